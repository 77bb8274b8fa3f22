// Declarations for the run-time binding to libpam (libpam_linux.c). The PAM
// types are declared here, from the Linux-PAM ABI, so that building the
// server needs no libpam headers: the library is opened with dlopen when the
// first PAM provider is built.
#ifndef TILED_LIBPAM_LINUX_H
#define TILED_LIBPAM_LINUX_H

#include <stdint.h>

// Return codes and constants of Linux-PAM (security/_pam_types.h), stable
// since Linux-PAM 0.x: they are part of its ABI.
enum {
	TILED_PAM_SUCCESS = 0,
	TILED_PAM_BUF_ERR = 5,
	TILED_PAM_CONV_ERR = 19,
	TILED_PAM_USER = 2,
	TILED_PAM_DISALLOW_NULL_AUTHTOK = 1
};

// tiled_pam_load opens the library at path and resolves the symbols used
// here. It returns NULL on success, or a message (to be freed) saying why not.
char *tiled_pam_load(const char *path);

// tiled_pam_txn is one PAM transaction: the handle and the conversation
// structure it points to, which must outlive the handle.
typedef struct tiled_pam_txn tiled_pam_txn;

// tiled_pam_start runs pam_start. The conversation calls the Go function
// goPAMConv with handle for each message. On failure *txn is NULL.
int tiled_pam_start(const char *service, const char *user, uintptr_t handle, tiled_pam_txn **txn);
int tiled_pam_authenticate(tiled_pam_txn *txn, int flags);
int tiled_pam_acct_mgmt(tiled_pam_txn *txn, int flags);
// tiled_pam_user returns a copy (to be freed) of PAM_USER, or NULL.
char *tiled_pam_user(tiled_pam_txn *txn, int *status);
// tiled_pam_strerror returns a copy (to be freed) of PAM's message for code.
char *tiled_pam_strerror(tiled_pam_txn *txn, int code);
// tiled_pam_end runs pam_end with the last status and frees txn.
int tiled_pam_end(tiled_pam_txn *txn, int status);

#endif
