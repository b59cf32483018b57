import streamlit as st

st.title("north_star")
st.write("under construction")
