"""Linking returns to the orders they came from.

Channel keys first (the order line id the channel names); where a channel
only names the order and the product, the line is found by EAN, then SKU, and
marked so (`link_method`), because a product-based link is a guess a person
may want to check. Runs after every pull over lines still unlinked, so an
order that arrives later links its returns then.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

# Each step links what the previous could not; the returns' channel scopes every match.
_LINE_MATCH = """
SELECT ol.id FROM order_lines ol JOIN orders o ON o.id = ol.order_id
WHERE o.channel_id = (SELECT r.channel_id FROM returns r WHERE r.id = return_lines.return_id)
  AND o.external_id = return_lines.order_external_id
  AND {condition}
ORDER BY ol.id LIMIT 1
"""

_STEPS = (
    ("channel_key", "return_lines.order_line_external_id IS NOT NULL",
     "ol.external_id = return_lines.order_line_external_id"),
    ("ean", "return_lines.ean IS NOT NULL", "ol.ean = return_lines.ean"),
    ("sku", "return_lines.sku IS NOT NULL", "ol.sku = return_lines.sku"),
)


@dataclass
class LinkResult:
    orders_linked: int = 0
    lines_linked: int = 0


def link_returns(db: Engine, channel_id: int | None = None) -> LinkResult:
    """Link unlinked returns and return lines of one channel (or all) to stored orders."""
    scope_returns = "AND returns.channel_id = :channel_id" if channel_id is not None else ""
    scope_lines = (
        "AND return_lines.return_id IN (SELECT id FROM returns WHERE channel_id = :channel_id)"
        if channel_id is not None else ""
    )
    params = {"channel_id": channel_id} if channel_id is not None else {}
    result = LinkResult()
    with db.begin() as conn:
        result.orders_linked = conn.execute(text(f"""
            UPDATE returns SET order_id = (
                SELECT o.id FROM orders o
                WHERE o.channel_id = returns.channel_id AND o.external_id = returns.order_external_id)
            WHERE order_id IS NULL AND order_external_id IS NOT NULL {scope_returns}
              AND EXISTS (SELECT 1 FROM orders o
                          WHERE o.channel_id = returns.channel_id AND o.external_id = returns.order_external_id)
        """), params).rowcount
        for method, precondition, condition in _STEPS:
            match = _LINE_MATCH.format(condition=condition)
            result.lines_linked += conn.execute(text(f"""
                UPDATE return_lines SET order_line_id = ({match}), link_method = '{method}'
                WHERE order_line_id IS NULL AND order_external_id IS NOT NULL AND {precondition} {scope_lines}
                  AND EXISTS ({match})
            """), params).rowcount
    return result
