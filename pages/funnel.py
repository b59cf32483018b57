import streamlit as st

st.title("funnel")
st.write("under construction")
