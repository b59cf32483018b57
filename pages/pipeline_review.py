import streamlit as st

st.title("pipeline_review")
st.write("under construction")
