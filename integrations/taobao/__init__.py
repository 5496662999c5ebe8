"""淘宝/天猫: the TOP REST API (router/rest) and the TMC message channel, behind `ShopConnector`."""
