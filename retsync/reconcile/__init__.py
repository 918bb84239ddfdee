"""After every pull: returns linked to their orders (`linking`), one customer's returns grouped across channels
(`customers`), and what is wrong flagged (`flags`)."""
