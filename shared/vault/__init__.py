"""The credentials vault: Tink envelope crypto, encrypted credentials and provider configs."""
