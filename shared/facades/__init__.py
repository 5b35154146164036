"""Compatible API facades (docs/adr/0042-compatible-api-facades.md): other platforms' wire
formats translated onto Stratus's services. A facade holds its request and answer models, its
dialect (answers, errors, stream frames) and the translation of its calls onto the services;
it implements nothing the services already do."""
