/* OpenAI embeddings as a dialect of the relay engine (dialect.h); the rules
 * are in embeddings.h. */
#include "embeddings.h"

#include "jarena.h"

#include "upstream_error.h" /* Ollama's error answers are alike on every route */
#include "diag.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The deepest nesting skipped through in the members of an answer we ignore. */
#define MAX_DEPTH 64
/* The longest native number read (see embeddings.h). */
#define NUMBER_MAX 63
/* Native spellings up to this length are copied as they stand. */
#define VERBATIM_MAX 15
/* float32 values base64-encoded at a time: 3072 bytes, a multiple of 3, so
 * that the blocks' encodings join without padding between them. */
#define B64_FLOATS 768

struct embeddings_state {
    struct dialect_common c;
    const char *client_model; /* borrowed from the engine (begin) for the request's life */
    size_t inputs;            /* the vectors the answer must hold */
    bool base64;
};

static int oom(struct apierr *err)
{
    return apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                      "The gateway ran out of memory while handling this request.");
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */

struct embed_req {
    cJSON *root;        /* owned: the client's parsed body */
    const char *model;  /* borrowed from root */
    const cJSON *input; /* borrowed from root: a string or an array of strings */
    size_t inputs;
    long dimensions; /* 0: not asked for */
    bool base64;
};

/* A member of obj; null counts as absent. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

static const char *kind(const cJSON *it)
{
    switch (it->type & 0xff) {
    case cJSON_String:
        return "a string";
    case cJSON_Number:
        return "a number";
    case cJSON_True:
    case cJSON_False:
        return "a boolean";
    case cJSON_Array:
        return "an array";
    case cJSON_Object:
        return "an object";
    }
    return "null";
}

static int wrong_type(struct apierr *err, const char *param, const char *expected, const cJSON *got)
{
    return apierr_invalid(err, param, "Invalid type for '%s': expected %s, but got %s instead.",
                          param, expected, kind(got));
}

/* [1, 2, 3]: token ids, as OpenAI accepts them. */
static bool is_token_list(const cJSON *it)
{
    if (!cJSON_IsArray(it))
        return false;
    for (const cJSON *t = it->child; t; t = t->next)
        if (!cJSON_IsNumber(t))
            return false;
    return true;
}

static int check_input(const cJSON *in, size_t *count, struct apierr *err)
{
    if (!in)
        return apierr_invalid(err, "input", "Missing required parameter: 'input'.");
    if (cJSON_IsString(in)) {
        *count = 1;
        return 0;
    }
    if (!cJSON_IsArray(in))
        return wrong_type(err, "input", "a string or an array of strings", in);
    if (!in->child)
        return apierr_invalid(err, "input",
                              "'input' must not be an empty array: send a string, or an array "
                              "of one or more strings.");
    size_t n = 0, numbers = 0, lists = 0, bad_at = 0;
    const cJSON *bad = NULL;
    for (const cJSON *it = in->child; it; it = it->next, n++) {
        if (cJSON_IsString(it))
            continue;
        numbers += cJSON_IsNumber(it);
        lists += is_token_list(it);
        if (!bad) {
            bad = it;
            bad_at = n;
        }
    }
    if (numbers == n || lists == n)
        return apierr_invalid(err, "input",
                              "Token arrays are not supported in 'input': send the text itself, "
                              "as a string or an array of strings (the model behind the gateway "
                              "has its own tokenizer).");
    if (bad) {
        char param[48];
        diag_path_index(param, sizeof param, "input", bad_at);
        return wrong_type(err, param, "a string", bad);
    }
    *count = n;
    return 0;
}

static int check_fields(struct embed_req *q, struct apierr *err)
{
    const cJSON *root = q->root;
    if (!cJSON_IsObject(root))
        return apierr_invalid(err, NULL, "The request body must be a JSON object, not %s.",
                              kind(root));

    const cJSON *model = member(root, "model");
    if (!model)
        return apierr_invalid(err, "model", "Missing required parameter: 'model'.");
    if (!cJSON_IsString(model))
        return wrong_type(err, "model", "a string", model);
    if (!model->valuestring[0])
        return apierr_invalid(err, "model", "'model' must not be empty.");
    q->model = model->valuestring;

    q->input = member(root, "input");
    if (check_input(q->input, &q->inputs, err) < 0)
        return -1;

    const cJSON *fmt = member(root, "encoding_format");
    if (fmt && !cJSON_IsString(fmt))
        return wrong_type(err, "encoding_format", "a string", fmt);
    if (fmt && strcmp(fmt->valuestring, "base64") == 0) {
        q->base64 = true;
    } else if (fmt && strcmp(fmt->valuestring, "float") != 0) {
        char shown[DIAG_SHOWBUF];
        return apierr_invalid(err, "encoding_format",
                              "Invalid value for 'encoding_format': %s. Supported values are: "
                              "'float' and 'base64'.",
                              DIAG_SHOW(shown, fmt->valuestring));
    }

    const cJSON *dim = member(root, "dimensions");
    if (dim && !cJSON_IsNumber(dim))
        return wrong_type(err, "dimensions", "an integer", dim);
    if (dim) {
        double d = dim->valuedouble;
        if (!(d >= 1 && d <= INT_MAX) || d != (double)(long)d)
            return apierr_invalid(err, "dimensions",
                                  "Invalid value for 'dimensions': expected an integer from 1 to "
                                  "%d.",
                                  INT_MAX);
        q->dimensions = (long)d;
    }
    return 0;
}

/* Parse and check a client's body. 0 (free q->root), or -1 with err set and
 * nothing to free. */
static int parse_request(struct embed_req *q, const char *body, size_t len, struct apierr *err)
{
    memset(q, 0, sizeof *q);
    if (!len)
        return apierr_invalid(err, NULL, "The request body is empty; send a JSON object.");
    /* cJSON 1.7.15 may read a byte past the length it is given (DaveGamble/
     * cJSON #804), and the body need not be NUL-terminated: parse a copy. */
    char *copy = malloc(len + 1);
    if (!copy)
        return oom(err);
    memcpy(copy, body, len);
    copy[len] = '\0';
    const char *end = NULL;
    unsigned long nomem = jarena_nomem();
    q->root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
    while (q->root && at < len && memchr(" \t\r\n", copy[at], 4))
        at++;
    free(copy);
    if (!q->root && jarena_nomem() != nomem)
        return oom(err);
    if (!q->root || at != len) {
        cJSON_Delete(q->root);
        q->root = NULL;
        return apierr_invalid(err, NULL,
                              "We could not parse the JSON body of your request (error at byte "
                              "%zu). Send a valid JSON object.",
                              at);
    }
    if (check_fields(q, err) < 0) {
        cJSON_Delete(q->root);
        q->root = NULL;
        return -1;
    }
    return 0;
}

/* Append item as compact JSON, printed straight into out. cJSON never
 * prints a string longer than the text it parsed it from (its escapes are
 * never longer than any other spelling of the same character), so `bound`,
 * the length of that text, is room enough. */
static int put_printed(struct buf *out, const cJSON *item, size_t bound)
{
    const size_t spare = 5; /* cJSON's estimate of its own needs may be off by that */
    if (bound > (size_t)INT_MAX - spare || buf_reserve(out, bound + spare) < 0)
        return -1;
    if (!cJSON_PrintPreallocated((cJSON *)item, out->p + out->len, (int)(bound + spare), 0))
        return -1;
    out->len += strlen(out->p + out->len);
    return 0;
}

/* {"model","input":[...],"truncate":true,"dimensions"?,"options"?}. len is
 * the client body's length, which bounds the printed input. */
static int write_native(const struct embed_req *q, size_t len, const struct dialect_model *m,
                        struct buf *native, struct apierr *err)
{
    size_t start = native->len;
    bool one = cJSON_IsString(q->input);
    int rc = buf_puts(native, "{\"model\":");
    rc |= buf_json_str(native, m->name, strlen(m->name));
    rc |= buf_puts(native, one ? ",\"input\":[" : ",\"input\":");
    rc |= put_printed(native, q->input, len);
    rc |= buf_puts(native, one ? "],\"truncate\":true" : ",\"truncate\":true");
    if (q->dimensions) {
        rc |= buf_puts(native, ",\"dimensions\":");
        rc |= buf_put_int(native, q->dimensions);
    }
    if (cJSON_IsObject(m->options) && m->options->child) {
        char *opts = cJSON_PrintUnformatted(m->options);
        rc |= opts ? buf_puts(native, ",\"options\":") | buf_puts(native, opts) : -1;
        cJSON_free(opts);
    }
    rc |= buf_puts(native, "}");
    if (rc) {
        native->len = start;
        if (native->p)
            native->p[start] = '\0';
        return oom(err);
    }
    return 0;
}

static int translate(void *st, const char *body, size_t len, dialect_resolve_fn resolve, void *ctx,
                     struct buf *native, struct apierr *err)
{
    struct embeddings_state *s = st;
    struct embed_req q;
    if (parse_request(&q, body, len, err) < 0)
        return -1;
    struct dialect_model m;
    int rc = resolve(ctx, q.model, false, &m, err);
    if (rc == 0)
        rc = write_native(&q, len, &m, native, err);
    if (rc == 0) {
        s->inputs = q.inputs;
        s->base64 = q.base64;
    }
    cJSON_Delete(q.root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Answer: a validating scanner over the native JSON                         */

struct scan {
    const char *p, *end;
    const char *start; /* for offsets in messages */
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* Take c if it is the next byte that is not blank. */
static bool take(struct scan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Skip digits; false when there is none. */
static bool digits(struct scan *s)
{
    const char *from = s->p;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return s->p != from;
}

/* A JSON string: *raw is what lies between its quotes, escapes unresolved. */
static bool string_at(struct scan *s, struct str *raw)
{
    if (!take(s, '"'))
        return false;
    for (const char *q = s->p; q < s->end; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            raw->p = s->p;
            raw->len = (size_t)(q - s->p);
            s->p = q + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (++q >= s->end)
            return false;
        if (*q == 'u') {
            if (s->end - q < 5 || hex_value(q[1]) < 0 || hex_value(q[2]) < 0 ||
                hex_value(q[3]) < 0 || hex_value(q[4]) < 0)
                return false;
            q += 4;
        } else if (!memchr("\"\\/bfnrt", *q, 8)) {
            return false;
        }
    }
    return false;
}

/* A JSON number (RFC 8259 grammar): *tok is its text. */
static bool number_at(struct scan *s, struct str *tok)
{
    ws(s);
    const char *from = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    tok->p = from;
    tok->len = (size_t)(s->p - from);
    return true;
}

static bool word_at(struct scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* "key": */
static bool key_at(struct scan *s, struct str *key)
{
    return string_at(s, key) && take(s, ':');
}

static bool scalar_at(struct scan *s)
{
    struct str ignored;
    ws(s);
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '"':
        return string_at(s, &ignored);
    case 't':
        return word_at(s, "true", 4);
    case 'f':
        return word_at(s, "false", 5);
    case 'n':
        return word_at(s, "null", 4);
    }
    return number_at(s, &ignored);
}

/* Step over one JSON value of any kind, checking its syntax, without
 * recursion: bit k of `objects` says whether the container k+1 levels down
 * is an object. */
static bool skip_value(struct scan *s)
{
    uint64_t objects = 0;
    unsigned depth = 0;
    struct str key;
    for (;;) {
        ws(s);
        if (s->p < s->end && (*s->p == '{' || *s->p == '[')) {
            bool obj = *s->p++ == '{';
            if (depth == MAX_DEPTH)
                return false;
            objects = objects << 1 | obj;
            depth++;
            if (!take(s, obj ? '}' : ']')) {
                if (obj && !key_at(s, &key))
                    return false;
                continue; /* to the container's first value */
            }
            objects >>= 1;
            depth--;
        } else if (!scalar_at(s)) {
            return false;
        }
        /* After a value: close what ends here, then go on to the next value. */
        for (;;) {
            if (!depth)
                return true;
            bool obj = objects & 1;
            if (take(s, ',')) {
                if (obj && !key_at(s, &key))
                    return false;
                break;
            }
            if (!take(s, obj ? '}' : ']'))
                return false;
            objects >>= 1;
            depth--;
        }
    }
}

/* Is the raw (escaped) key equal to name, a plain ASCII identifier? */
static bool key_is(struct str key, const char *name)
{
    const char *p = key.p, *end = key.p + key.len;
    if (!memchr(p, '\\', key.len))
        return key.len == strlen(name) && memcmp(p, name, key.len) == 0;
    for (; *name; name++) {
        if (p >= end)
            return false;
        unsigned c = (unsigned char)*p++;
        if (c == '\\') {
            c = (unsigned char)*p++; /* string_at checked every escape */
            if (c == 'u') {
                c = 0;
                for (int k = 0; k < 4; k++)
                    c = c * 16 + (unsigned)hex_value(*p++);
            } else if (strchr("bfnrt", (int)c)) {
                c = 1; /* a control character: in no name */
            }
        }
        if (c != (unsigned char)*name)
            return false;
    }
    return p == end;
}

/* What is wrong with a native answer. */
enum flaw {
    FLAW_NONE,
    FLAW_SYNTAX,  /* not one JSON object */
    FLAW_SHAPE,   /* "embeddings" is not an array of arrays of numbers */
    FLAW_RANGE,   /* a number that is not a finite float32 */
    FLAW_MISSING, /* no "embeddings" */
    FLAW_COUNT,   /* not one vector per input */
    FLAW_FULL,    /* the translation passes out's ceiling */
    FLAW_OOM,
};

struct answer {
    struct scan s;
    struct buf *out;
    const struct embeddings_state *st;
    enum flaw flaw;
    size_t vectors;     /* for FLAW_COUNT: how many came (more_than: at least) */
    bool more_than;     /* more vectors than inputs came */
    bool seen;          /* "embeddings" was translated */
    long prompt_tokens; /* native prompt_eval_count */
};

static bool flawed(struct answer *a, enum flaw f)
{
    a->flaw = f;
    return false;
}

/* An append of want bytes failed: the ceiling, or memory? */
static bool no_room(struct answer *a, size_t want)
{
    return flawed(a, want > a->out->max - a->out->len ? FLAW_FULL : FLAW_OOM);
}

static bool put(struct answer *a, const char *p, size_t n)
{
    return buf_append(a->out, p, n) == 0 || no_room(a, n);
}

#define PUT_LIT(a, s) put((a), (s), sizeof(s) - 1)

static bool put_count(struct answer *a, long long v)
{
    return buf_put_int(a->out, v) == 0 || no_room(a, 20);
}

/* n bytes of float32 values as base64, straight into out. */
static bool put_base64(struct answer *a, const unsigned char *bin, size_t n)
{
    const int v = sodium_base64_VARIANT_ORIGINAL;
    size_t chars = sodium_base64_ENCODED_LEN(n, v) - 1; /* without its NUL */
    if (buf_reserve(a->out, chars) < 0)
        return no_room(a, chars);
    sodium_bin2base64(a->out->p + a->out->len, chars + 1, bin, n, v);
    a->out->len += chars;
    return true;
}

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The float32 nearest to tok, a JSON number, exactly as strtof() rounds it;
 * false when tok has no quick answer. strtof() was most of the time an
 * answer of thousands of vectors took, so the common case goes Clinger's way:
 * at most 19 digits making an integer below 2^53, scaled by an exact power of
 * ten, is one correctly rounded division or multiplication in double.
 * Rounding that double to float is then exact too, unless the double fell
 * precisely halfway between two floats while the decimal did not: a
 * midpoint is itself a double, so the first rounding can land on one but
 * never cross one. That rare case is left to strtof().
 */
static bool quick_float(struct str tok, float *out)
{
    const char *p = tok.p, *end = tok.p + tok.len;
    bool neg = *p == '-';
    uint64_t m = 0;
    int n = 0, scale = 0;
    for (p += neg; p < end && is_digit(*p); p++, n++)
        m = m * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.')
        for (p++; p < end && is_digit(*p); p++, n++, scale--)
            m = m * 10 + (uint64_t)(*p - '0');
    if (p < end) { /* the exponent; number_at() checked its grammar */
        bool down = *++p == '-';
        int e = 0, k = 0;
        for (p += *p == '-' || *p == '+'; p < end; p++, k++)
            if (k < 4)
                e = e * 10 + (*p - '0');
        if (k > 4)
            return false; /* a long exponent (1e00005 too): strtof() sorts it out */
        scale += down ? -e : e;
    }
    if (n > 19)
        return false; /* m wrapped */
    if (!m) {
        *out = neg ? -0.0f : 0.0f;
        return true;
    }
    if (m > (1ull << 53) || scale < -22 || scale > 22)
        return false;
    double d = scale < 0 ? (double)m / exact_pow10[-scale] : (double)m * exact_pow10[scale];
    /* d lies between 1e-22 and 2^53 * 1e22, inside float's normal range, so
     * the 29 bits of its mantissa below float's precision say whether it is
     * a midpoint: exactly a one followed by zeros. */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    if ((bits & 0x1fffffffu) == 0x10000000u)
        return false;
    float f = (float)d;
    *out = neg ? -f : f;
    return true;
}

/* The float32 value of a native number: false (FLAW_RANGE) when it is not
 * finite as a float32, or too long to be any encoder's. */
static bool float_of(struct answer *a, struct str tok, float *f)
{
    char text[NUMBER_MAX + 1];
    if (tok.len > NUMBER_MAX) {
        a->s.p = tok.p;
        return flawed(a, FLAW_RANGE);
    }
    if (!quick_float(tok, f)) {
        memcpy(text, tok.p, tok.len);
        text[tok.len] = '\0';
        *f = strtof(text, NULL); /* the grammar was checked: all of it is read */
    }
    if (!isfinite(*f)) {
        a->s.p = tok.p;
        return flawed(a, FLAW_RANGE);
    }
    return true;
}

static bool put_float(struct answer *a, struct str tok, float f)
{
    if (tok.len <= VERBATIM_MAX)
        return put(a, tok.p, tok.len);
    char text[32];
    int n = snprintf(text, sizeof text, "%.9g", (double)f);
    return put(a, text, (size_t)n);
}

/* One native vector [numbers] as data[index]. */
static bool vector(struct answer *a, size_t index)
{
    bool b64 = a->st->base64;
    unsigned char block[B64_FLOATS * 4];
    size_t used = 0;
    if ((index && !PUT_LIT(a, ",")) || !PUT_LIT(a, "{\"object\":\"embedding\",\"index\":") ||
        !put_count(a, (long long)index) ||
        !(b64 ? PUT_LIT(a, ",\"embedding\":\"") : PUT_LIT(a, ",\"embedding\":[")))
        return false;
    if (!take(&a->s, '['))
        return flawed(a, FLAW_SHAPE);
    if (!take(&a->s, ']')) {
        size_t k = 0;
        do {
            struct str tok;
            float f;
            if (!number_at(&a->s, &tok))
                return flawed(a, FLAW_SHAPE);
            if (!float_of(a, tok, &f))
                return false;
            if (!b64) {
                if ((k++ && !PUT_LIT(a, ",")) || !put_float(a, tok, f))
                    return false;
                continue;
            }
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            for (int b = 0; b < 4; b++)
                block[used++] = (unsigned char)(u >> (8 * b)); /* little-endian */
            if (used == sizeof block) {
                if (!put_base64(a, block, used))
                    return false;
                used = 0;
            }
        } while (take(&a->s, ','));
        if (!take(&a->s, ']'))
            return flawed(a, FLAW_SHAPE);
    }
    if (used && !put_base64(a, block, used))
        return false;
    return b64 ? PUT_LIT(a, "\"}") : PUT_LIT(a, "]}");
}

static bool embeddings(struct answer *a)
{
    size_t n = 0;
    if (a->seen)
        return flawed(a, FLAW_SHAPE); /* a second "embeddings" */
    a->seen = true;
    if (!take(&a->s, '['))
        return flawed(a, FLAW_SHAPE);
    if (!take(&a->s, ']')) {
        do {
            if (n == a->st->inputs) {
                a->vectors = n;
                a->more_than = true;
                return flawed(a, FLAW_COUNT);
            }
            if (!vector(a, n++))
                return false;
        } while (take(&a->s, ','));
        if (!take(&a->s, ']'))
            return flawed(a, FLAW_SHAPE);
    }
    a->vectors = n;
    return n == a->st->inputs || flawed(a, FLAW_COUNT);
}

/* prompt_eval_count: a count in plain digits (what Ollama writes); anything
 * else valid is taken as 0, as a missing count is. */
static bool prompt_count(struct answer *a)
{
    ws(&a->s);
    const char *from = a->s.p;
    if (!skip_value(&a->s))
        return flawed(a, FLAW_SYNTAX);
    long v = 0;
    for (const char *p = from; p < a->s.p; p++) {
        if (!is_digit(*p) || p - from >= 15) {
            v = 0;
            break;
        }
        v = v * 10 + (*p - '0');
    }
    a->prompt_tokens = v;
    return true;
}

static bool answer_object(struct answer *a)
{
    if (!take(&a->s, '{'))
        return flawed(a, FLAW_SYNTAX);
    if (!take(&a->s, '}')) {
        do {
            struct str key;
            if (!key_at(&a->s, &key))
                return flawed(a, FLAW_SYNTAX);
            if (key_is(key, "embeddings")) {
                if (!embeddings(a))
                    return false;
            } else if (key_is(key, "prompt_eval_count")) {
                if (!prompt_count(a))
                    return false;
            } else if (!skip_value(&a->s)) {
                return flawed(a, FLAW_SYNTAX);
            }
        } while (take(&a->s, ','));
        if (!take(&a->s, '}'))
            return flawed(a, FLAW_SYNTAX);
    }
    ws(&a->s);
    if (a->s.p != a->s.end)
        return flawed(a, FLAW_SYNTAX);
    return a->seen || flawed(a, FLAW_MISSING);
}

static int answer_error(const struct answer *a, struct apierr *err)
{
    char who[96];
    const char *backend = a->st->c.backend;
    size_t at = (size_t)(a->s.p - a->s.start);
    if (backend && backend[0])
        snprintf(who, sizeof who, "Backend \"%.63s\"", backend);
    else
        snprintf(who, sizeof who, "The backend");
    const char *what = "is not one JSON object";
    switch (a->flaw) {
    case FLAW_NONE:
    case FLAW_SYNTAX:
        break;
    case FLAW_SHAPE:
        what = "has \"embeddings\" that are not an array of arrays of numbers";
        break;
    case FLAW_RANGE:
        what = "has a number in \"embeddings\" that is not a 32-bit float";
        break;
    case FLAW_MISSING:
        return apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                          "%s sent an /api/embed answer without \"embeddings\".", who);
    case FLAW_COUNT:
        return apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                          "%s sent %s%zu embeddings for %zu inputs.", who,
                          a->more_than ? "more than " : "", a->vectors, a->st->inputs);
    case FLAW_FULL:
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s sent embeddings that take more than the gateway's limit of %zu bytes to "
                   "relay; ask for fewer inputs at a time.",
                   who, a->out->max);
        err->no_retry = true;
        return -1;
    case FLAW_OOM:
        return oom(err);
    }
    return apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                      "%s sent an /api/embed answer that %s (at byte %zu).", who, what, at);
}

static int complete(void *st, const char *body, size_t len, struct buf *out, struct apierr *err)
{
    struct embeddings_state *s = st;
    struct answer a = {.s = {body, body + len, body}, .out = out, .st = s};
    const char *model = s->client_model ? s->client_model : "";
    size_t start = out->len;
    /* Room for about what the answer takes, in one allocation rather than a
     * dozen doublings and copies: the float form is about as long as the
     * native text, base64 under half of it. Only a hint: on failure the
     * appends find out what is wrong. */
    size_t guess = (s->base64 ? len / 2 : len) + 256;
    buf_reserve(out, guess < out->max - out->len ? guess : out->max - out->len);
    bool ok = PUT_LIT(&a, "{\"object\":\"list\",\"data\":[") && answer_object(&a) &&
              PUT_LIT(&a, "],\"model\":");
    if (ok && buf_json_str(out, model, strlen(model)) < 0)
        ok = no_room(&a, strlen(model) + 2);
    ok = ok && PUT_LIT(&a, ",\"usage\":{\"prompt_tokens\":") && put_count(&a, a.prompt_tokens) &&
         PUT_LIT(&a, ",\"total_tokens\":") && put_count(&a, a.prompt_tokens) && PUT_LIT(&a, "}}");
    if (!ok) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        return answer_error(&a, err);
    }
    s->c.prompt_tokens = a.prompt_tokens;
    s->c.completion_tokens = 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The rest of the contract                                                  */

static int begin(void *st, const struct dialect_answer *ans)
{
    struct embeddings_state *s = st;
    s->client_model = ans->client_model;
    return 0;
}

/* translate() never asks for a stream, so the engine never streams. */
static int not_streamed(struct apierr *err)
{
    apierr_set(err, 500, APIERR_API, "internal_error", NULL,
               "Embeddings are never streamed, yet a streamed answer arrived.");
    return DIALECT_FAIL;
}

static int line(void *st, const char *p, size_t len, struct buf *out, struct apierr *err)
{
    (void)st;
    (void)p;
    (void)len;
    (void)out;
    return not_streamed(err);
}

static int eof(void *st, struct buf *out, struct apierr *err)
{
    (void)st;
    (void)out;
    return not_streamed(err);
}

static void release(void *st)
{
    (void)st; /* nothing in the state is on the heap */
}

const struct dialect dialect_embeddings = {
    .name = "embeddings",
    .native_path = "/api/embed",
    .id_prefix = NULL,   /* OpenAI's embedding lists carry no id */
    .stream_type = NULL, /* never streamed */
    .errors = &errshape_openai,
    .state_size = sizeof(struct embeddings_state),
    .translate = translate,
    .begin = begin,
    .line = line,
    .eof = eof,
    .complete = complete,
    .upstream_error = upstream_error_map,
    .keepalive = NULL,
    .release = release,
};
