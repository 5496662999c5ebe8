"""快递100 (kuaidi100) subscription pushes: tracking updates for the parcels a shop subscribed."""
