import streamlit as st

st.title("handoffs")
st.write("under construction")
