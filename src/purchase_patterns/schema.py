"""The canonical purchase schema every source is mapped to, and the reference data the
contract checks against (US states, Census regions, enumerations).

One row of ``raw.purchases`` is one purchase line. Columns that a source does not carry are
NULL (for example ``purchase_date`` on the Kaggle snapshot file, or ``age`` on CDNOW).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    description: str
    required: bool = False


#: Canonical columns, in order. ``batch_id`` and ``source_line`` are lineage columns added at load.
CANONICAL_COLUMNS: tuple[Column, ...] = (
    Column("batch_id", "VARCHAR", "SHA-256 of the raw file content the row came from", True),
    Column("source_line", "BIGINT", "1-based line of the record in the raw file", True),
    Column("purchase_id", "VARCHAR", "Purchase line id: from the source, else <batch>-<line>", True),
    Column("customer_id", "VARCHAR", "Customer identifier as given by the source", True),
    Column("purchase_date", "DATE", "Date of purchase (NULL when the source has no dates)"),
    Column("season", "VARCHAR", "Winter/Spring/Summer/Fall: from the source or derived from the date"),
    Column("item", "VARCHAR", "Item purchased"),
    Column("category", "VARCHAR", "Product category"),
    Column("amount", "DECIMAL(18,2)", "Purchase amount in USD (>= 0)", True),
    Column("quantity", "INTEGER", "Units in the purchase line (1 when the source has none)", True),
    Column("size", "VARCHAR", "Size of the item"),
    Column("color", "VARCHAR", "Colour of the item"),
    Column("review_rating", "DOUBLE", "Customer review rating, 1 to 5"),
    Column("payment_method", "VARCHAR", "Payment method used for this purchase"),
    Column("shipping_type", "VARCHAR", "Shipping type chosen"),
    Column("discount_applied", "BOOLEAN", "Whether a discount was applied"),
    Column("promo_code_used", "BOOLEAN", "Whether a promo code was used"),
    Column("age", "INTEGER", "Customer age in years (0 to 120)"),
    Column("gender", "VARCHAR", "Customer gender"),
    Column("state", "VARCHAR", "US state (full name) of the customer"),
    Column("subscription_status", "BOOLEAN", "Whether the customer has a subscription"),
    Column("previous_purchases", "INTEGER", "Purchases the customer made before (stated)"),
    Column("preferred_payment_method", "VARCHAR", "Customer's preferred payment method"),
    Column("purchase_frequency", "VARCHAR", "Stated purchase frequency (Weekly ... Annually)"),
)

CANONICAL_NAMES: tuple[str, ...] = tuple(c.name for c in CANONICAL_COLUMNS)
#: Columns a source maps to (everything but the lineage columns added by the loader).
SOURCE_FIELDS: tuple[str, ...] = tuple(
    c.name for c in CANONICAL_COLUMNS if c.name not in ("batch_id", "source_line")
)

SEASONS: tuple[str, ...] = ("Winter", "Spring", "Summer", "Fall")

#: Stated purchase frequency → expected purchases per year.
FREQUENCY_PER_YEAR: dict[str, float] = {
    "Weekly": 52.0,
    "Bi-Weekly": 26.0,
    "Fortnightly": 26.0,
    "Monthly": 12.0,
    "Quarterly": 4.0,
    "Every 3 Months": 4.0,
    "Annually": 1.0,
}

GENDERS: tuple[str, ...] = ("Male", "Female", "Non-binary", "Other", "Unknown")

#: US states and DC: name → (USPS code, Census region, Census division, 2020 population).
US_STATES: dict[str, tuple[str, str, str, int]] = {
    "Alabama": ("AL", "South", "East South Central", 5024279),
    "Alaska": ("AK", "West", "Pacific", 733391),
    "Arizona": ("AZ", "West", "Mountain", 7151502),
    "Arkansas": ("AR", "South", "West South Central", 3011524),
    "California": ("CA", "West", "Pacific", 39538223),
    "Colorado": ("CO", "West", "Mountain", 5773714),
    "Connecticut": ("CT", "Northeast", "New England", 3605944),
    "Delaware": ("DE", "South", "South Atlantic", 989948),
    "District of Columbia": ("DC", "South", "South Atlantic", 689545),
    "Florida": ("FL", "South", "South Atlantic", 21538187),
    "Georgia": ("GA", "South", "South Atlantic", 10711908),
    "Hawaii": ("HI", "West", "Pacific", 1455271),
    "Idaho": ("ID", "West", "Mountain", 1839106),
    "Illinois": ("IL", "Midwest", "East North Central", 12812508),
    "Indiana": ("IN", "Midwest", "East North Central", 6785528),
    "Iowa": ("IA", "Midwest", "West North Central", 3190369),
    "Kansas": ("KS", "Midwest", "West North Central", 2937880),
    "Kentucky": ("KY", "South", "East South Central", 4505836),
    "Louisiana": ("LA", "South", "West South Central", 4657757),
    "Maine": ("ME", "Northeast", "New England", 1362359),
    "Maryland": ("MD", "South", "South Atlantic", 6177224),
    "Massachusetts": ("MA", "Northeast", "New England", 7029917),
    "Michigan": ("MI", "Midwest", "East North Central", 10077331),
    "Minnesota": ("MN", "Midwest", "West North Central", 5706494),
    "Mississippi": ("MS", "South", "East South Central", 2961279),
    "Missouri": ("MO", "Midwest", "West North Central", 6154913),
    "Montana": ("MT", "West", "Mountain", 1084225),
    "Nebraska": ("NE", "Midwest", "West North Central", 1961504),
    "Nevada": ("NV", "West", "Mountain", 3104614),
    "New Hampshire": ("NH", "Northeast", "New England", 1377529),
    "New Jersey": ("NJ", "Northeast", "Middle Atlantic", 9288994),
    "New Mexico": ("NM", "West", "Mountain", 2117522),
    "New York": ("NY", "Northeast", "Middle Atlantic", 20201249),
    "North Carolina": ("NC", "South", "South Atlantic", 10439388),
    "North Dakota": ("ND", "Midwest", "West North Central", 779094),
    "Ohio": ("OH", "Midwest", "East North Central", 11799448),
    "Oklahoma": ("OK", "South", "West South Central", 3959353),
    "Oregon": ("OR", "West", "Pacific", 4237256),
    "Pennsylvania": ("PA", "Northeast", "Middle Atlantic", 13002700),
    "Rhode Island": ("RI", "Northeast", "New England", 1097379),
    "South Carolina": ("SC", "South", "South Atlantic", 5118425),
    "South Dakota": ("SD", "Midwest", "West North Central", 886667),
    "Tennessee": ("TN", "South", "East South Central", 6910840),
    "Texas": ("TX", "South", "West South Central", 29145505),
    "Utah": ("UT", "West", "Mountain", 3271616),
    "Vermont": ("VT", "Northeast", "New England", 643077),
    "Virginia": ("VA", "South", "South Atlantic", 8631393),
    "Washington": ("WA", "West", "Pacific", 7705281),
    "West Virginia": ("WV", "South", "South Atlantic", 1793716),
    "Wisconsin": ("WI", "Midwest", "East North Central", 5893718),
    "Wyoming": ("WY", "West", "Mountain", 576851),
}

#: Kaggle "customer shopping trends" headers (19-column file), in file order.
KAGGLE_HEADERS_19: tuple[str, ...] = (
    "Customer ID", "Age", "Gender", "Item Purchased", "Category", "Purchase Amount (USD)",
    "Location", "Size", "Color", "Season", "Review Rating", "Subscription Status",
    "Payment Method", "Shipping Type", "Discount Applied", "Promo Code Used",
    "Previous Purchases", "Preferred Payment Method", "Frequency of Purchases",
)

#: Category → items, as in the Kaggle file (the generator draws from these).
CATEGORY_ITEMS: dict[str, tuple[str, ...]] = {
    "Clothing": ("Blouse", "Dress", "Hoodie", "Jeans", "Pants", "Shirt", "Shorts", "Skirt",
                 "Socks", "Sweater", "T-shirt"),
    "Footwear": ("Boots", "Sandals", "Shoes", "Sneakers"),
    "Outerwear": ("Coat", "Jacket"),
    "Accessories": ("Backpack", "Belt", "Gloves", "Handbag", "Hat", "Jewelry", "Scarf",
                    "Sunglasses"),
}
