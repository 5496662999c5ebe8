"""The carrier side: intercept requests to the merchant's carrier/ERP endpoint, a fake, a simulator."""
