"""The store: the database (engine, transactions, what differs by dialect) and its tables; migrations/ changes them."""
