"""The shop's commerce side (ERP, RPA or platform bridge): refunds, stop-shipment, buyer messages."""
