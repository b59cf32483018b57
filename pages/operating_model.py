import streamlit as st

st.title("operating_model")
st.write("under construction")
