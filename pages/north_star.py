"""North Star metrics: recurring revenue, retention and growth efficiency."""
from ui import tier_page

tier_page.render("north_star")
