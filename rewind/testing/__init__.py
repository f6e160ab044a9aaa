"""Test doubles of the outside world, shipped so users and our tests can use them."""
