"""Intercept cases: ask a carrier to stop a parcel, follow up, and let the refund move on."""
