/* LP64 -> ILP64 forwarding shim: the BLAS/LAPACK routines FAISS imports (32-bit integers, Fortran names such as
 * sgemm_), implemented by calling NumPy's OpenBLAS (scipy-openblas64: 64-bit integers, names scipy_sgemm_64_).
 * packaging/shim_faiss_blas.py compiles it under the name of FAISS's own OpenBLAS (37 MB), which the bundle then no
 * longer needs. Every integer argument is widened; integer arrays (pivots, LAPACK integer workspace) are copied
 * both ways; info and rank are narrowed back. Character arguments get their hidden Fortran length (1).
 *
 * The set of routines is checked against what libfaiss.so imports (nm -D) before the shim replaces anything; a
 * FAISS that imports one more routine makes the build keep the original library. */
#include <stdint.h>
#include <stdlib.h>
#include <stddef.h>

typedef int32_t i32;
typedef int64_t i64;
typedef size_t flen;

#define W(x) i64 x##_ = (i64)(*(x))

/* NumPy's OpenBLAS */
extern void scipy_sgemm_64_(const char *, const char *, const i64 *, const i64 *, const i64 *, const float *,
                            const float *, const i64 *, const float *, const i64 *, const float *, float *,
                            const i64 *, flen, flen);
extern void scipy_dgemm_64_(const char *, const char *, const i64 *, const i64 *, const i64 *, const double *,
                            const double *, const i64 *, const double *, const i64 *, const double *, double *,
                            const i64 *, flen, flen);
extern void scipy_sgemv_64_(const char *, const i64 *, const i64 *, const float *, const float *, const i64 *,
                            const float *, const i64 *, const float *, float *, const i64 *, flen);
extern void scipy_ssyrk_64_(const char *, const char *, const i64 *, const i64 *, const float *, const float *,
                            const i64 *, const float *, float *, const i64 *, flen, flen);
extern void scipy_sgesvd_64_(const char *, const char *, const i64 *, const i64 *, float *, const i64 *, float *,
                             float *, const i64 *, float *, const i64 *, float *, const i64 *, i64 *, flen, flen);
extern void scipy_dgesvd_64_(const char *, const char *, const i64 *, const i64 *, double *, const i64 *, double *,
                             double *, const i64 *, double *, const i64 *, double *, const i64 *, i64 *, flen, flen);
extern void scipy_sgetrf_64_(const i64 *, const i64 *, float *, const i64 *, i64 *, i64 *);
extern void scipy_dgetrf_64_(const i64 *, const i64 *, double *, const i64 *, i64 *, i64 *);
extern void scipy_sgetri_64_(const i64 *, float *, const i64 *, const i64 *, float *, const i64 *, i64 *);
extern void scipy_dgetri_64_(const i64 *, double *, const i64 *, const i64 *, double *, const i64 *, i64 *);
extern void scipy_dsyev_64_(const char *, const char *, const i64 *, double *, const i64 *, double *, double *,
                            const i64 *, i64 *, flen, flen);
extern void scipy_sgelsd_64_(const i64 *, const i64 *, const i64 *, float *, const i64 *, float *, const i64 *,
                             float *, const float *, i64 *, float *, const i64 *, i64 *, i64 *);
extern void scipy_sgeqrf_64_(const i64 *, const i64 *, float *, const i64 *, float *, float *, const i64 *, i64 *);
extern void scipy_sorgqr_64_(const i64 *, const i64 *, const i64 *, float *, const i64 *, const float *, float *,
                             const i64 *, i64 *);

#define EXPORT __attribute__((visibility("default")))

#define GEMM(P, T)                                                                           \
    EXPORT int P##gemm_(const char *ta, const char *tb, const i32 *m, const i32 *n, const i32 *k, const T *alpha, \
                        const T *a, const i32 *lda, const T *b, const i32 *ldb, const T *beta, T *c,            \
                        const i32 *ldc) {                                                    \
        W(m); W(n); W(k); W(lda); W(ldb); W(ldc);                                            \
        scipy_##P##gemm_64_(ta, tb, &m_, &n_, &k_, alpha, a, &lda_, b, &ldb_, beta, c, &ldc_, 1, 1); \
        return 0;                                                                            \
    }
GEMM(s, float)
GEMM(d, double)

EXPORT int sgemv_(const char *t, const i32 *m, const i32 *n, const float *alpha, const float *a, const i32 *lda,
                  const float *x, const i32 *incx, const float *beta, float *y, const i32 *incy) {
    W(m); W(n); W(lda); W(incx); W(incy);
    scipy_sgemv_64_(t, &m_, &n_, alpha, a, &lda_, x, &incx_, beta, y, &incy_, 1);
    return 0;
}

EXPORT int ssyrk_(const char *uplo, const char *t, const i32 *n, const i32 *k, const float *alpha, const float *a,
                  const i32 *lda, const float *beta, float *c, const i32 *ldc) {
    W(n); W(k); W(lda); W(ldc);
    scipy_ssyrk_64_(uplo, t, &n_, &k_, alpha, a, &lda_, beta, c, &ldc_, 1, 1);
    return 0;
}

#define GESVD(P, T)                                                                          \
    EXPORT int P##gesvd_(const char *ju, const char *jvt, const i32 *m, const i32 *n, T *a, const i32 *lda, T *s, \
                         T *u, const i32 *ldu, T *vt, const i32 *ldvt, T *work, const i32 *lwork, i32 *info) {    \
        W(m); W(n); W(lda); W(ldu); W(ldvt); W(lwork);                                       \
        i64 info_ = 0;                                                                       \
        scipy_##P##gesvd_64_(ju, jvt, &m_, &n_, a, &lda_, s, u, &ldu_, vt, &ldvt_, work, &lwork_, &info_, 1, 1); \
        *info = (i32)info_;                                                                  \
        return 0;                                                                            \
    }
GESVD(s, float)
GESVD(d, double)

/* pivots: min(m, n) entries written by getrf, read by getri (n entries) */
static i64 *widen(const i32 *v, i64 n) {
    i64 *w = malloc((size_t)(n > 0 ? n : 1) * sizeof(i64));
    if (w && v)
        for (i64 i = 0; i < n; i++) w[i] = v[i];
    return w;
}

static void narrow(i32 *dst, const i64 *src, i64 n) {
    for (i64 i = 0; i < n; i++) dst[i] = (i32)src[i];
}

/* getrf (pivots out) and getri (pivots in), single and double precision */
#define GETRF(P, T)                                                                          \
    EXPORT int P##getrf_(const i32 *m, const i32 *n, T *a, const i32 *lda, i32 *ipiv, i32 *info) { \
        W(m); W(n); W(lda);                                                                  \
        i64 mn = m_ < n_ ? m_ : n_, info_ = 0;                                               \
        i64 *piv = widen(NULL, mn);                                                          \
        if (!piv) { *info = -5; return 0; }                                                  \
        scipy_##P##getrf_64_(&m_, &n_, a, &lda_, piv, &info_);                               \
        narrow(ipiv, piv, mn);                                                               \
        free(piv);                                                                           \
        *info = (i32)info_;                                                                  \
        return 0;                                                                            \
    }
#define GETRI(P, T)                                                                          \
    EXPORT int P##getri_(const i32 *n, T *a, const i32 *lda, const i32 *ipiv, T *work, const i32 *lwork, \
                         i32 *info) {                                                        \
        W(n); W(lda); W(lwork);                                                              \
        i64 info_ = 0, *piv = widen(ipiv, n_);                                               \
        if (!piv) { *info = -4; return 0; }                                                  \
        scipy_##P##getri_64_(&n_, a, &lda_, piv, work, &lwork_, &info_);                     \
        free(piv);                                                                           \
        *info = (i32)info_;                                                                  \
        return 0;                                                                            \
    }
GETRF(s, float)
GETRF(d, double)
GETRI(s, float)
GETRI(d, double)

EXPORT int dsyev_(const char *jobz, const char *uplo, const i32 *n, double *a, const i32 *lda, double *w,
                  double *work, const i32 *lwork, i32 *info) {
    W(n); W(lda); W(lwork);
    i64 info_ = 0;
    scipy_dsyev_64_(jobz, uplo, &n_, a, &lda_, w, work, &lwork_, &info_, 1, 1);
    *info = (i32)info_;
    return 0;
}

/* LAPACK's bound on sgelsd's integer workspace: 3 * minmn * nlvl + 11 * minmn, nlvl = log2(minmn / 26) + 1 */
static i64 sgelsd_liwork(i64 m, i64 n) {
    i64 mn = m < n ? m : n, nlvl = 1;
    if (mn < 1) mn = 1;
    for (i64 s = mn / 26; s > 0; s >>= 1) nlvl++;
    return 3 * mn * nlvl + 11 * mn + 1;
}

EXPORT int sgelsd_(const i32 *m, const i32 *n, const i32 *nrhs, float *a, const i32 *lda, float *b, const i32 *ldb,
                   float *s, const float *rcond, i32 *rank, float *work, const i32 *lwork, i32 *iwork, i32 *info) {
    W(m); W(n); W(nrhs); W(lda); W(ldb); W(lwork);
    i64 rank_ = 0, info_ = 0, liw = sgelsd_liwork(m_, n_);
    i64 *iw = widen(NULL, liw);
    if (!iw) { *info = -13; return 0; }
    iw[0] = 0;
    scipy_sgelsd_64_(&m_, &n_, &nrhs_, a, &lda_, b, &ldb_, s, rcond, &rank_, work, &lwork_, iw, &info_);
    if (lwork_ == -1) iwork[0] = (i32)iw[0]; /* workspace query: the integer workspace size */
    free(iw);
    *rank = (i32)rank_;
    *info = (i32)info_;
    return 0;
}

EXPORT int sgeqrf_(const i32 *m, const i32 *n, float *a, const i32 *lda, float *tau, float *work, const i32 *lwork,
                   i32 *info) {
    W(m); W(n); W(lda); W(lwork);
    i64 info_ = 0;
    scipy_sgeqrf_64_(&m_, &n_, a, &lda_, tau, work, &lwork_, &info_);
    *info = (i32)info_;
    return 0;
}

EXPORT int sorgqr_(const i32 *m, const i32 *n, const i32 *k, float *a, const i32 *lda, const float *tau,
                   float *work, const i32 *lwork, i32 *info) {
    W(m); W(n); W(k); W(lda); W(lwork);
    i64 info_ = 0;
    scipy_sorgqr_64_(&m_, &n_, &k_, a, &lda_, tau, work, &lwork_, &info_);
    *info = (i32)info_;
    return 0;
}
