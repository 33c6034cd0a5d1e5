"""The gateway: sources (one folder per protocol), parsing, validation, the COPY writer."""
