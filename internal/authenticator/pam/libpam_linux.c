//go:build cgo && linux && !nopam

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpam_linux.h"
#include "_cgo_export.h"

// The Linux-PAM structures (security/_pam_types.h).
struct pam_message {
	int msg_style;
	const char *msg;
};

struct pam_response {
	char *resp;
	int resp_retcode;
};

struct pam_conv {
	int (*conv)(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata_ptr);
	void *appdata_ptr;
};

typedef struct pam_handle pam_handle_t;

struct tiled_pam_txn {
	pam_handle_t *pamh;
	struct pam_conv conv;
};

struct pam_fns {
	int (*start)(const char *, const char *, const struct pam_conv *, pam_handle_t **);
	int (*end)(pam_handle_t *, int);
	int (*authenticate)(pam_handle_t *, int);
	int (*acct_mgmt)(pam_handle_t *, int);
	int (*get_item)(const pam_handle_t *, int, const void **);
	const char *(*strerror)(pam_handle_t *, int);
};

static struct pam_fns fn;

char *tiled_pam_load(const char *path) {
	// RTLD_LOCAL: libpam's symbols stay out of the global namespace, and
	// PAM modules link libpam themselves.
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char *e = dlerror();
		return strdup(e != NULL ? e : "dlopen failed");
	}
	// Resolved into a local copy, so that a failed load (a library without
	// these symbols) leaves an earlier successful one untouched.
	struct pam_fns f;
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{"pam_start", (void **)&f.start},
		{"pam_end", (void **)&f.end},
		{"pam_authenticate", (void **)&f.authenticate},
		{"pam_acct_mgmt", (void **)&f.acct_mgmt},
		{"pam_get_item", (void **)&f.get_item},
		{"pam_strerror", (void **)&f.strerror},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		dlerror();
		void *p = dlsym(lib, syms[i].name);
		if (p == NULL) {
			char buf[256];
			snprintf(buf, sizeof buf, "%s: symbol %s not found", path, syms[i].name);
			dlclose(lib);
			return strdup(buf);
		}
		*syms[i].slot = p;
	}
	fn = f;
	return NULL;
}

// conv answers each message through Go. Linux-PAM passes msg as an array of
// num_msg pointers (pam_conv(3)). On any failure every answer given so far
// is wiped and freed, and PAM_CONV_ERR makes the module give up.
static int conv(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata_ptr) {
	if (num_msg <= 0 || num_msg > 32) {
		return TILED_PAM_CONV_ERR;
	}
	struct pam_response *r = calloc((size_t)num_msg, sizeof *r);
	if (r == NULL) {
		return TILED_PAM_BUF_ERR;
	}
	for (int i = 0; i < num_msg; i++) {
		char *answer = NULL;
		if (goPAMConv((uintptr_t)appdata_ptr, msg[i]->msg_style, (char *)msg[i]->msg, &answer) != 0) {
			for (int j = 0; j <= i; j++) {
				if (r[j].resp != NULL) {
					explicit_bzero(r[j].resp, strlen(r[j].resp));
					free(r[j].resp);
				}
			}
			if (answer != NULL) {
				explicit_bzero(answer, strlen(answer));
				free(answer);
			}
			free(r);
			return TILED_PAM_CONV_ERR;
		}
		r[i].resp = answer; // PAM frees it
	}
	*resp = r;
	return TILED_PAM_SUCCESS;
}

int tiled_pam_start(const char *service, const char *user, uintptr_t handle, tiled_pam_txn **txn) {
	*txn = NULL;
	tiled_pam_txn *t = calloc(1, sizeof *t);
	if (t == NULL) {
		return TILED_PAM_BUF_ERR;
	}
	t->conv.conv = conv;
	t->conv.appdata_ptr = (void *)handle;
	int rc = fn.start(service, user, &t->conv, &t->pamh);
	if (rc != TILED_PAM_SUCCESS) {
		if (t->pamh != NULL) {
			fn.end(t->pamh, rc);
		}
		free(t);
		return rc;
	}
	*txn = t;
	return rc;
}

int tiled_pam_authenticate(tiled_pam_txn *txn, int flags) { return fn.authenticate(txn->pamh, flags); }

int tiled_pam_acct_mgmt(tiled_pam_txn *txn, int flags) { return fn.acct_mgmt(txn->pamh, flags); }

char *tiled_pam_user(tiled_pam_txn *txn, int *status) {
	const void *item = NULL;
	*status = fn.get_item(txn->pamh, TILED_PAM_USER, &item);
	if (*status != TILED_PAM_SUCCESS || item == NULL) {
		return NULL;
	}
	return strdup((const char *)item);
}

char *tiled_pam_strerror(tiled_pam_txn *txn, int code) {
	const char *s = fn.strerror(txn != NULL ? txn->pamh : NULL, code);
	return strdup(s != NULL ? s : "unknown PAM error");
}

int tiled_pam_end(tiled_pam_txn *txn, int status) {
	int rc = fn.end(txn->pamh, status);
	free(txn);
	return rc;
}
