"""The embedded local stack: emulator launcher, gateway and helpers. Never deployed."""
