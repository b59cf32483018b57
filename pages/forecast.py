import streamlit as st

st.title("forecast")
st.write("under construction")
