"""One module per alarm rule family; each is a function from columns (and state) to columns."""
