"""Thin Streamlit helpers shared by the pages: cached data by data version, filters, widgets."""
