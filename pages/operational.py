"""Operational metrics: pipeline, conversion and deal economics."""
from ui import tier_page

tier_page.render("operational")
