"""Screens and widgets of the console. They render app state; they never poll."""
