#define FFI_SCOPE "LAKEBASE"
#define FFI_LIB "liblakebase.so.0"
/* liblakebase for PHP FFI: ffi.preload=<this file>, then FFI::scope("LAKEBASE") (Lakebase\Native does it). */
typedef struct lakebase_client lakebase_client;
int lakebase_client_new(const char *options, lakebase_client **out);
void lakebase_client_free(lakebase_client *c);
int lakebase_default_client(const lakebase_client **out);
int lakebase_client_get_password(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_try_get_password(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_refresh(const lakebase_client *c);
int lakebase_client_refresh_rejected(const lakebase_client *c, const char *rejected);
int lakebase_client_token_expiry(const lakebase_client *c, int64_t *out_unix_seconds);
int lakebase_client_identity(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_auth_type(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_refresh_error(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_postgres_host(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_client_postgres_role(const lakebase_client *c, char *buf, size_t buf_len, size_t *out_len);
int lakebase_connect_retry_delay(const char *sqlstate, const char *message, int password_asked, uint32_t failed_attempts, int64_t elapsed_ms, const char *connect_timeout, int64_t *out_delay_ms);
size_t lakebase_last_error(char *buf, size_t buf_len);
const char *lakebase_result_name(int result);
const char *lakebase_version(void);
