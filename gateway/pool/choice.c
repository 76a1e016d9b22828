#include "choice.h"

static bool free_slot(const struct choice_backend *b)
{
    return b->max_inflight == 0 || b->inflight < b->max_inflight;
}

static bool queue_room(const struct choice_backend *b)
{
    return b->max_inflight > 0 && b->queued < b->max_queue;
}

static unsigned weight_of(const struct choice_backend *b)
{
    return b->weight ? b->weight : 1;
}

bool choice_less_busy(const struct choice_backend *a, const struct choice_backend *b)
{
    /* a.inflight / a.weight < b.inflight / b.weight, without division */
    unsigned long long x = (unsigned long long)a->inflight * weight_of(b);
    unsigned long long y = (unsigned long long)b->inflight * weight_of(a);
    if (x != y)
        return x < y;
    x = (unsigned long long)a->queued * weight_of(b);
    y = (unsigned long long)b->queued * weight_of(a);
    return x < y;
}

static bool shorter_queue(const struct choice_backend *a, const struct choice_backend *b)
{
    unsigned long long x = (unsigned long long)a->queued * weight_of(b);
    unsigned long long y = (unsigned long long)b->queued * weight_of(a);
    if (x != y)
        return x < y;
    return choice_less_busy(a, b);
}

enum pick { PICK_SEND, PICK_QUEUE };

/* The best candidate passing the filter (loaded: only those with the model
 * loaded; loading: only those loading it), or -1. */
static long best(const struct choice_backend *v, size_t n, enum pick how, bool loaded_only,
                 bool loading_only)
{
    long found = -1;
    for (size_t i = 0; i < n; i++) {
        const struct choice_backend *b = &v[i];
        if (!b->up || !b->has_model || !b->allowed)
            continue;
        if ((loaded_only && !b->loaded) || (loading_only && !b->loading))
            continue;
        if (how == PICK_SEND ? !free_slot(b) : !queue_room(b))
            continue;
        if (found < 0 ||
            (how == PICK_SEND ? choice_less_busy(b, &v[found]) : shorter_queue(b, &v[found])))
            found = (long)i;
    }
    return found;
}

enum choice_outcome choice_pick(const struct choice_backend *v, size_t n, size_t *idx)
{
    bool any_candidate = false, any_loaded = false, any_loading = false;
    bool any_up = false, has_but_down = false;
    for (size_t i = 0; i < n; i++) {
        const struct choice_backend *b = &v[i];
        if (!b->allowed)
            continue;
        any_up |= b->up;
        if (!b->has_model)
            continue;
        if (!b->up) {
            has_but_down = true;
            continue;
        }
        any_candidate = true;
        any_loaded |= b->loaded;
        any_loading |= b->loading;
    }
    if (!any_candidate)
        return has_but_down || !any_up ? CHOICE_NONE_UP : CHOICE_NO_MODEL;

    long i;
    if (any_loaded && (i = best(v, n, PICK_SEND, true, false)) >= 0)
        goto send;
    if (!any_loaded && any_loading) {
        if ((i = best(v, n, PICK_SEND, false, true)) >= 0)
            goto send;
        if ((i = best(v, n, PICK_QUEUE, false, true)) >= 0)
            goto queue;
    }
    if ((i = best(v, n, PICK_SEND, false, false)) >= 0)
        goto send;
    if (any_loaded && (i = best(v, n, PICK_QUEUE, true, false)) >= 0)
        goto queue;
    if ((i = best(v, n, PICK_QUEUE, false, false)) >= 0)
        goto queue;
    return CHOICE_FULL;
send:
    *idx = (size_t)i;
    return CHOICE_SEND;
queue:
    *idx = (size_t)i;
    return CHOICE_QUEUE;
}

const char *choice_outcome_name(enum choice_outcome o)
{
    switch (o) {
    case CHOICE_SEND:
        return "send";
    case CHOICE_QUEUE:
        return "queue";
    case CHOICE_FULL:
        return "full";
    case CHOICE_NO_MODEL:
        return "no_model";
    case CHOICE_NONE_UP:
        return "none_up";
    }
    return "?";
}
