"""Recipes: schema, engine, run directory and ledger."""
