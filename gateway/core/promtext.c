#include "promtext.h"

#include <math.h>
#include <string.h>

int prom_escape_value(struct buf *b, const char *s)
{
    int rc = 0;
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        rc |= buf_append(b, run, (size_t)(s - run));
        rc |= buf_puts(b, esc);
        run = s + 1;
    }
    return rc | buf_append(b, run, (size_t)(s - run));
}

/* HELP text escapes only \ and newline. */
static int escape_help(struct buf *b, const char *s)
{
    int rc = 0;
    const char *run = s;
    for (; *s; s++) {
        if (*s != '\\' && *s != '\n')
            continue;
        rc |= buf_append(b, run, (size_t)(s - run));
        rc |= buf_puts(b, *s == '\\' ? "\\\\" : "\\n");
        run = s + 1;
    }
    return rc | buf_append(b, run, (size_t)(s - run));
}

int prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
    int rc = buf_puts(b, "# HELP ");
    rc |= buf_puts(b, name);
    rc |= buf_puts(b, " ");
    rc |= escape_help(b, help);
    rc |= buf_puts(b, "\n# TYPE ");
    rc |= buf_puts(b, name);
    rc |= buf_puts(b, " ");
    rc |= buf_puts(b, type);
    return rc | buf_puts(b, "\n");
}

int prom_put_micro(struct buf *b, uint64_t micro)
{
    char frac[8];
    unsigned f = (unsigned)(micro % 1000000);
    int rc = buf_printf(b, "%llu", (unsigned long long)(micro / 1000000));
    if (!f)
        return rc;
    for (int i = 5; i >= 0; i--, f /= 10)
        frac[i] = (char)('0' + f % 10);
    size_t n = 6;
    while (frac[n - 1] == '0')
        n--;
    frac[n] = '\0';
    return rc | buf_puts(b, ".") | buf_puts(b, frac);
}

/* name{a="x",b="y"[,le="..."]} and the space before the value. le: the
 * bound in millionths, or UINT64_MAX for "+Inf", or no le when !with_le. */
static int series(struct buf *b, const char *name, const char *suffix, const struct prom_label *l,
                  size_t nl, bool with_le, uint64_t le)
{
    int rc = buf_puts(b, name) | buf_puts(b, suffix);
    if (nl || with_le) {
        rc |= buf_puts(b, "{");
        for (size_t i = 0; i < nl; i++) {
            rc |= buf_puts(b, i ? "," : "") | buf_puts(b, l[i].name) | buf_puts(b, "=\"");
            rc |= prom_escape_value(b, l[i].value ? l[i].value : "") | buf_puts(b, "\"");
        }
        if (with_le) {
            rc |= buf_puts(b, nl ? ",le=\"" : "le=\"");
            rc |= le == UINT64_MAX ? buf_puts(b, "+Inf") : prom_put_micro(b, le);
            rc |= buf_puts(b, "\"");
        }
        rc |= buf_puts(b, "}");
    }
    return rc | buf_puts(b, " ");
}

int prom_sample(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                uint64_t value)
{
    return series(b, name, "", l, nl, false, 0) |
           buf_printf(b, "%llu\n", (unsigned long long)value);
}

int prom_sample_micro(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                      uint64_t micro)
{
    return series(b, name, "", l, nl, false, 0) | prom_put_micro(b, micro) | buf_puts(b, "\n");
}

int prom_sample_double(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                       double value)
{
    int rc = series(b, name, "", l, nl, false, 0);
    if (isnan(value))
        return rc | buf_puts(b, "NaN\n");
    if (isinf(value))
        return rc | buf_puts(b, value > 0 ? "+Inf\n" : "-Inf\n");
    return rc | buf_printf(b, "%.17g\n", value);
}

int prom_histogram(struct buf *b, const char *name, const struct prom_label *l, size_t nl,
                   const uint64_t *bounds_micro, size_t nbounds, const uint64_t *counts,
                   uint64_t sum_micro)
{
    int rc = 0;
    uint64_t cum = 0;
    for (size_t i = 0; i <= nbounds; i++) {
        cum += counts[i];
        rc |= series(b, name, "_bucket", l, nl, true, i < nbounds ? bounds_micro[i] : UINT64_MAX);
        rc |= buf_printf(b, "%llu\n", (unsigned long long)cum);
    }
    rc |= series(b, name, "_sum", l, nl, false, 0) | prom_put_micro(b, sum_micro);
    rc |= buf_puts(b, "\n");
    rc |= series(b, name, "_count", l, nl, false, 0);
    return rc | buf_printf(b, "%llu\n", (unsigned long long)cum);
}
