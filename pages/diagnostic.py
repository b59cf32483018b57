import streamlit as st

st.title("diagnostic")
st.write("under construction")
