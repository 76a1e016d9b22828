/*
 * local: the routes the gateway answers itself, without a backend: the
 * model list (from the aliases and what discovery found, filtered by the
 * key's scopes), the health checks, and the parts of Ollama's native API
 * that describe the backends rather than run a model. Each is a route handler (routes.h),
 * called from the access handler once the request is authenticated.
 * Worker thread only.
 */
#ifndef GATEWAY_LOCAL_H
#define GATEWAY_LOCAL_H

#include <microhttpd.h>

struct request;

enum MHD_Result local_models(struct request *r); /* GET /v1/models */
enum MHD_Result local_model(struct request *r);  /* GET /v1/models/{id} */
/* The same two in Anthropic's shapes (routes_anthropic). */
enum MHD_Result local_anthropic_models(struct request *r);
enum MHD_Result local_anthropic_model(struct request *r);
enum MHD_Result local_healthz(struct request *r);   /* GET /healthz */
enum MHD_Result local_readyz(struct request *r);    /* GET /readyz */
enum MHD_Result local_not_found(struct request *r); /* any path not in the table */

/* Ollama's native API, answered from what discovery knows. */
enum MHD_Result local_ollama_tags(struct request *r);    /* GET /api/tags */
enum MHD_Result local_ollama_ps(struct request *r);      /* GET /api/ps */
enum MHD_Result local_ollama_version(struct request *r); /* GET /api/version */
enum MHD_Result local_ollama_root(struct request *r);    /* GET / */

#endif
