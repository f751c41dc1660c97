#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H

#include <curl/curl.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Swift cannot call C variadic functions, so each curl_easy_setopt / curl_easy_getinfo /
   curl_multi_setopt form that CurlHTTP uses gets a typed inline wrapper here. */

static inline CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_ptr(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_write_cb(CURL *handle, CURLoption option, curl_write_callback cb) {
    return curl_easy_setopt(handle, option, cb);
}

static inline CURLcode ccurl_easy_setopt_seek_cb(CURL *handle, CURLoption option, curl_seek_callback cb) {
    return curl_easy_setopt(handle, option, cb);
}

static inline CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *out) {
    return curl_easy_getinfo(handle, info, out);
}

static inline CURLMcode ccurl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

/* CURLMsg keeps its result in an anonymous union, which Swift imports awkwardly. */
static inline CURLcode ccurl_msg_result(const CURLMsg *msg) {
    return msg->data.result;
}

/* Feature bits of the libcurl this process loaded. */
static inline int ccurl_has_http2(void) {
    curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    return info != 0 && (info->features & CURL_VERSION_HTTP2) != 0;
}

static inline const char *ccurl_version_string(void) {
    return curl_version();
}

/* Names the calling thread (Linux: at most 15 characters), so it shows in ps, top and gdb. */
static inline void ccurl_set_thread_name(const char *name) {
#ifdef __linux__
    prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

/* The kernel's id of the calling thread (Linux), so tests can see a thread is gone from /proc. */
static inline long ccurl_thread_id(void) {
#ifdef __linux__
    return syscall(SYS_gettid);
#else
    return 0;
#endif
}

#endif
