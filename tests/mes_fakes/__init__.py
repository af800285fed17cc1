"""Fake MES systems and the contract suite every MES adapter joins."""
