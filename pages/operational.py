import streamlit as st

st.title("operational")
st.write("under construction")
