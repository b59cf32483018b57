import streamlit as st

st.title("data")
st.write("under construction")
