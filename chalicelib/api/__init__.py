"""HTTP: Chalice blueprints that parse requests, call services and render resources."""
