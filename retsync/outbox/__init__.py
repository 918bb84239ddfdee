"""Decisions: recorded once (`decisions`), carried to the channel exactly once (`push`, with the one table
from failure to outcome in `outcomes`), and the shop back-office flow that holds marketplace returns in a
shop's panel and reads the merchant's decisions back (`backoffice`)."""
