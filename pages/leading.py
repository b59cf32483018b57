import streamlit as st

st.title("leading")
st.write("under construction")
