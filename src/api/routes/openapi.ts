/** GET /openapi.json: the OpenAPI 3.1 document of every route (built once, on first request). */
import { Router } from 'express';
import { buildOpenApiDocument, OPENAPI_PATH } from '../openapi.js';

export function openApiRouter(): Router {
  const router = Router();
  let document: string | undefined;
  router.get(OPENAPI_PATH, (_req, res) => {
    document ??= JSON.stringify(buildOpenApiDocument());
    res.type('application/json').send(document);
  });
  return router;
}
