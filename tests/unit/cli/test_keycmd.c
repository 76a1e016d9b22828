/* Unit tests for cli/keycmd.c: `ollama-gateway key ...` driven in-process,
 * with stdout and stderr captured. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "keycmd.h"
#include "keys_fixture.h"

#include <sodium.h>

struct run {
    int rc;
    char *out, *err;
};

static char *slurp_fd(int fd)
{
    struct buf b;
    buf_init(&b, 1u << 24);
    buf_append(&b, "", 0);
    lseek(fd, 0, SEEK_SET);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&b, chunk, (size_t)n);
    size_t len;
    return buf_detach(&b, &len);
}

/* keycmd_main("key", args..., NULL-terminated) with stdout and stderr
 * captured. */
static void run_key(struct run *r, const char *config, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "key";
    va_list ap;
    va_start(ap, config);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 30)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    char outname[] = "/tmp/test_keys.out.XXXXXX", errname[] = "/tmp/test_keys.err.XXXXXX";
    int ofd = mkstemp(outname), efd = mkstemp(errname);
    assert_true(ofd >= 0 && efd >= 0);
    unlink(outname);
    unlink(errname);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    r->rc = keycmd_main(argc, argv, config);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    r->out = slurp_fd(ofd);
    r->err = slurp_fd(efd);
    close(ofd);
    close(efd);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* A configuration in t->dir listening on listen, keys in keys.json. */
static void make_config(const struct tmp *t, char *conf, size_t n, const char *listen)
{
    snprintf(conf, n, "%s/gateway.json", t->dir);
    char text[512];
    snprintf(text, sizeof text,
             "{\"listen\": [\"%s\"], \"backends\": [{\"url\": \"http://127.0.0.1:11434\"}]}",
             listen);
    write_text(conf, text, 0644);
}

static struct keyring *load_file(const struct tmp *t)
{
    char path[256];
    snprintf(path, sizeof path, "%s/keys.json", t->dir);
    struct cfg_errors e;
    cfg_errors_init(&e);
    struct keyring *kr = keyring_load(path, NULL, &e);
    if (!kr)
        fail_msg("%s", e.text.p ? e.text.p : "");
    cfg_errors_free(&e);
    return kr;
}

/* The secret printed by create/init: the whole of stdout, one line. */
static void secret_of(const struct run *r, char out[KEY_SECRET_SIZE])
{
    assert_int_equal(strlen(r->out), KEY_SECRET_LEN + 1);
    assert_int_equal(r->out[KEY_SECRET_LEN], '\n');
    memcpy(out, r->out, KEY_SECRET_LEN);
    out[KEY_SECRET_LEN] = '\0';
}

static void test_cli_create_list(void **state)
{
    struct tmp *t = *state;
    char conf[256], keys[256], secret[KEY_SECRET_SIZE], secret2[KEY_SECRET_SIZE];
    make_config(t, conf, sizeof conf, "127.0.0.1:8080");
    snprintf(keys, sizeof keys, "%s/keys.json", t->dir);
    struct run r;

    /* no file yet: list says so, and prints an empty table */
    run_key(&r, conf, "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.out, "ID");
    assert_has(r.err, "no keys file yet");
    run_free(&r);

    run_key(&r, conf, "create", "alice", "--models", "llama3*,qwen2.5:14b", "--rpm", "60",
            "--tpm=100000", "--max-inflight", "2", "--expires", "2999-12-31", "--admin", NULL);
    assert_int_equal(r.rc, 0);
    secret_of(&r, secret);
    assert_has(r.err, "created key ");
    assert_has(r.err, " (alice) in ");
    assert_has(r.err, keys);
    assert_null(strstr(r.err, secret)); /* the secret only on stdout */
    run_free(&r);

    struct stat st;
    assert_int_equal(stat(keys, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char lock[300];
    snprintf(lock, sizeof lock, "%s.lock", keys);
    assert_int_equal(stat(lock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(t->dir), 3); /* gateway.json, keys.json, keys.json.lock */

    struct keyring *kr = load_file(t);
    assert_int_equal(kr->n, 1);
    const struct key *k = NULL;
    assert_int_equal(keyring_verify(kr, secret, strlen(secret), (int64_t)time(NULL), &k), KEY_OK);
    assert_string_equal(k->name, "alice");
    assert_int_equal(k->nmodels, 2);
    assert_string_equal(k->models[0], "llama3*");
    assert_string_equal(k->models[1], "qwen2.5:14b");
    assert_int_equal(k->rpm, 60);
    assert_int_equal(k->tpm, 100000);
    assert_int_equal(k->max_inflight, 2);
    assert_true(k->admin);
    assert_true(k->expires > 0);
    assert_true(k->created > 0 && k->created <= (int64_t)time(NULL));
    char id1[KEY_ID_LEN + 1];
    memcpy(id1, k->id, sizeof id1);
    keyring_unref(kr);

    /* a second key with the same name: a warning, and both keys work */
    run_key(&r, conf, "create", "alice", NULL);
    assert_int_equal(r.rc, 0);
    secret_of(&r, secret2);
    assert_has(r.err, "warning: key ");
    assert_has(r.err, "is also named \"alice\"");
    run_free(&r);
    kr = load_file(t);
    assert_int_equal(kr->n, 2);
    assert_int_equal(verify(kr, secret, (int64_t)time(NULL)), KEY_OK);
    assert_int_equal(verify(kr, secret2, (int64_t)time(NULL)), KEY_OK);
    /* the first record is kept as it was */
    k = keyring_find(kr, id1);
    assert_non_null(k);
    assert_int_equal(k->nmodels, 2);
    assert_int_equal(k->rpm, 60);
    assert_true(k->admin);
    keyring_unref(kr);

    /* list: ids, names, limits, never secrets or hashes */
    run_key(&r, conf, "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_has(r.out, "ID");
    assert_has(r.out, "NAME");
    assert_has(r.out, "MODELS");
    assert_has(r.out, "INFLIGHT");
    assert_has(r.out, "EXPIRES");
    assert_has(r.out, "STATE");
    assert_has(r.out, "CREATED");
    assert_has(r.out, id1);
    assert_has(r.out, "llama3*,qwen2.5:14b");
    assert_has(r.out, "2999-12-31");
    assert_has(r.out, "active");
    assert_has(r.out, "(all)");
    assert_null(strstr(r.out, "blake2b"));
    assert_null(strstr(r.out, secret + 16));
    assert_null(strstr(r.out, secret2 + 16));
    run_free(&r);

    run_key(&r, conf, "list", "--json", NULL);
    assert_int_equal(r.rc, 0);
    cJSON *arr = cJSON_Parse(r.out);
    assert_non_null(arr);
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    const cJSON *first = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "id")->valuestring, id1);
    assert_string_equal(cJSON_GetObjectItem(first, "state")->valuestring, "active");
    assert_string_equal(cJSON_GetObjectItem(first, "expires")->valuestring, "2999-12-31");
    assert_int_equal(cJSON_GetObjectItem(first, "rpm")->valueint, 60);
    assert_null(cJSON_GetObjectItem(first, "hash"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "models")));
    cJSON_Delete(arr);
    assert_null(strstr(r.out, "blake2b"));
    run_free(&r);
}

static void test_cli_revoke_disable_enable(void **state)
{
    struct tmp *t = *state;
    char conf[256], secret[KEY_SECRET_SIZE], id[KEY_ID_LEN + 1];
    make_config(t, conf, sizeof conf, "127.0.0.1:8080");
    struct run r;

    run_key(&r, conf, "revoke", "aaaaaaaaaaa1", NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, "no keys file");
    run_free(&r);

    run_key(&r, conf, "create", "ci", NULL);
    assert_int_equal(r.rc, 0);
    secret_of(&r, secret);
    run_free(&r);
    memcpy(id, secret + 3, KEY_ID_LEN);
    id[KEY_ID_LEN] = '\0';
    int64_t now = (int64_t)time(NULL);

    run_key(&r, conf, "disable", id, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "disabled key ");
    assert_string_equal(r.out, "");
    run_free(&r);
    struct keyring *kr = load_file(t);
    assert_int_equal(verify(kr, secret, now), KEY_DISABLED);
    keyring_unref(kr);

    run_key(&r, conf, "disable", id, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "already disabled");
    run_free(&r);

    run_key(&r, conf, "enable", id, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "enabled key ");
    run_free(&r);
    kr = load_file(t);
    assert_int_equal(verify(kr, secret, now), KEY_OK);
    keyring_unref(kr);

    run_key(&r, conf, "enable", id, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "is not disabled");
    run_free(&r);

    /* the whole secret names the key too */
    run_key(&r, conf, "revoke", secret, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "revoked key ");
    assert_string_equal(r.out, "");
    run_free(&r);
    kr = load_file(t);
    assert_int_equal(verify(kr, secret, now), KEY_REVOKED);
    assert_true(keyring_find(kr, id)->revoked >= now);
    keyring_unref(kr);

    run_key(&r, conf, "revoke", id, NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "already revoked");
    run_free(&r);

    run_key(&r, conf, "enable", id, NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, "cannot be enabled again");
    run_free(&r);

    run_key(&r, conf, "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.out, "revoked");
    run_free(&r);

    run_key(&r, conf, "revoke", "zzzzzzzzzzzz", NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, "no key with id zzzzzzzzzzzz");
    run_free(&r);
}

static void test_cli_init(void **state)
{
    struct tmp *t = *state;
    char conf[256], secret[KEY_SECRET_SIZE], line[1024];
    make_config(t, conf, sizeof conf, "0.0.0.0:8123");
    struct run r;

    run_key(&r, conf, "init", NULL);
    assert_int_equal(r.rc, 0);
    secret_of(&r, secret);
    assert_has(r.err, "(default)");
    assert_has(r.err, "shown only this once");
    snprintf(line, sizeof line,
             "curl http://127.0.0.1:8123/v1/models -H \"Authorization: Bearer %s\"", secret);
    assert_has(r.err, line);
    snprintf(line, sizeof line, "OpenAI(base_url=\"http://127.0.0.1:8123/v1\", api_key=\"%s\")",
             secret);
    assert_has(r.err, line);
    snprintf(line, sizeof line,
             "new OpenAI({ baseURL: \"http://127.0.0.1:8123/v1\", apiKey: \"%s\" })", secret);
    assert_has(r.err, line);
    run_free(&r);
    struct keyring *kr = load_file(t);
    assert_int_equal(kr->n, 1);
    assert_int_equal(verify(kr, secret, (int64_t)time(NULL)), KEY_OK);
    assert_null(kr->v[0].models);
    assert_int_equal(kr->v[0].rpm, 0);
    keyring_unref(kr);

    /* again: nothing to do, nothing on stdout */
    run_key(&r, conf, "init", "other", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    snprintf(line, sizeof line,
             "keys file %s/keys.json already holds 1 usable key(s); list them with: "
             "ollama-gateway key list -c %s",
             t->dir, conf);
    assert_has(r.err, line);
    run_free(&r);

    /* once no key is usable, init makes one */
    char id[KEY_ID_LEN + 1];
    memcpy(id, secret + 3, KEY_ID_LEN);
    id[KEY_ID_LEN] = '\0';
    run_key(&r, conf, "revoke", id, NULL);
    assert_int_equal(r.rc, 0);
    run_free(&r);
    run_key(&r, conf, "init", "second", NULL);
    assert_int_equal(r.rc, 0);
    secret_of(&r, secret);
    assert_has(r.err, "(second)");
    run_free(&r);

    /* an IPv6 wildcard is reached at [::1] */
    make_config(t, conf, sizeof conf, "[::]:9000");
    char keys[256];
    snprintf(keys, sizeof keys, "%s/keys.json", t->dir);
    unlink(keys);
    run_key(&r, conf, "init", NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.err, "curl http://[::1]:9000/v1/models");
    run_free(&r);
}

static void test_cli_errors(void **state)
{
    struct tmp *t = *state;
    char conf[256], keys[256];
    make_config(t, conf, sizeof conf, "127.0.0.1:8080");
    snprintf(keys, sizeof keys, "%s/keys.json", t->dir);
    struct run r;

    /* usage: exit 1, stdout empty, nothing written */
    static const char *const usage_cases[][8] = {
        {"create", NULL},
        {"create", "x", "--rpm", "abc", NULL},
        {"create", "x", "--rpm", "-1", NULL},
        {"create", "x", "--tpm", "1000000001", NULL},
        {"create", "x", "--max-inflight", NULL},
        {"create", "x", "--expires", "2025-02-30", NULL},
        {"create", "x", "--expires", "2001-01-01", NULL},
        {"create", "x", "--models", "a,,b", NULL},
        {"create", "x", "--bogus", NULL},
        {"create", "x", "y", NULL},
        {"create", "", NULL},
        {"create", "x", "--admin=yes", NULL},
        {"create", "x", "--rpm", "1", "--rpm", "2", NULL},
        {"list", "--rpm", "1", NULL},
        {"list", "extra", NULL},
        {"revoke", NULL},
        {"revoke", "ABCDEFGHIJKL", NULL},
        {"revoke", "short", NULL},
        {"frobnicate", NULL},
    };
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
        const char *const *c = usage_cases[i];
        run_key(&r, conf, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
        if (r.rc != 1)
            fail_msg("case %zu (%s %s): exit %d, stderr: %s", i, c[0], c[1] ? c[1] : "", r.rc,
                     r.err);
        assert_string_equal(r.out, "");
        assert_true(strlen(r.err) > 0);
        run_free(&r);
    }
    assert_int_equal(count_entries(t->dir), 1);

    run_key(&r, conf, "create", "x", "--rpm", "abc", NULL);
    assert_has(r.err, "--rpm: \"abc\" is not a whole number");
    run_free(&r);
    run_key(&r, conf, "create", "x", "--expires", "2025-02-30", NULL);
    assert_has(r.err, "\"2025-02-30\" is not a date YYYY-MM-DD");
    run_free(&r);
    run_key(&r, conf, "create", NULL);
    assert_has(r.err, "missing NAME");
    run_free(&r);
    run_key(&r, conf, "create", "x", "--bogus", NULL);
    assert_has(r.err, "unknown option \"--bogus\"");
    run_free(&r);

    /* help: stdout, exit 0 */
    run_key(&r, conf, "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_has(r.out, "key create NAME");
    run_free(&r);
    run_key(&r, conf, NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, "missing subcommand");
    run_free(&r);

    /* a bad configuration: its problems, exit 1 */
    char badconf[256];
    snprintf(badconf, sizeof badconf, "%s/bad.json", t->dir);
    write_text(badconf, "{\"backends\": []}", 0644);
    run_key(&r, badconf, "list", NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, "bad.json");
    run_free(&r);
    unlink(badconf);
    char nothere[256];
    snprintf(nothere, sizeof nothere, "%s/nothere.json", t->dir);
    run_key(&r, nothere, "list", NULL);
    assert_int_equal(r.rc, 1);
    run_free(&r);

    /* a keys file open to others: exit 1 with the chmod hint, untouched */
    const char *empty = "{\"version\": 1, \"keys\": []}";
    write_text(keys, empty, 0644);
    char hint[1024];
    snprintf(hint, sizeof hint, "chmod 600 %s", keys);
    run_key(&r, conf, "create", "x", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_has(r.err, hint);
    run_free(&r);
    run_key(&r, conf, "list", NULL);
    assert_int_equal(r.rc, 1);
    assert_has(r.err, hint);
    run_free(&r);
    char *now = read_text(keys);
    assert_string_equal(now, empty);
    free(now);

    /* a keys file with problems: each one, exit 1, untouched */
    const char *broken = "{\"version\": 1, \"keys\": [{\"id\": \"x\"}, 3]}";
    write_text(keys, broken, 0600);
    run_key(&r, conf, "create", "x", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_has(r.err, "keys[0].id:");
    assert_has(r.err, "keys[0].hash: missing");
    assert_has(r.err, "keys[1]: must be an object");
    assert_has(r.err, "not changed");
    run_free(&r);
    now = read_text(keys);
    assert_string_equal(now, broken);
    free(now);

    /* the keys file's folder does not exist: a runtime failure, exit 2 */
    char conf2[256];
    snprintf(conf2, sizeof conf2, "%s/gw2.json", t->dir);
    write_text(conf2,
               "{\"keys_file\": \"nope/keys.json\", \"backends\": [{\"url\": "
               "\"http://127.0.0.1:11434\"}]}",
               0644);
    run_key(&r, conf2, "create", "x", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.out, "");
    assert_has(r.err, "does the folder exist?");
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_create_list, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cli_revoke_disable_enable, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cli_init, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cli_errors, setup_dir, teardown_dir),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
