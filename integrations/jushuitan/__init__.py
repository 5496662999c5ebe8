"""聚水潭 (JushuiTan) ERP: stop a shipment in the warehouse, and read its after-sale list."""
