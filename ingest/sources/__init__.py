"""One module per source protocol; each turns what it receives into parsed messages."""
