"""Leading metrics: early signals of future revenue."""
from ui import tier_page

tier_page.render("leading")
