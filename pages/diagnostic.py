"""Diagnostic metrics: where the funnel and the handoffs leak."""
from ui import tier_page

tier_page.render("diagnostic")
