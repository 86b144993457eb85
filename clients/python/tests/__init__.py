"""End-to-end tests of the Sluice Python client against a real sluiced."""
