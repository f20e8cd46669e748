"""API routers, one per resource; `qa_service.app.create_app` includes them."""
