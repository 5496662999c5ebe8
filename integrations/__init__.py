"""Outside systems: chat platforms, the shop's commerce/ERP endpoint, and their fakes."""
