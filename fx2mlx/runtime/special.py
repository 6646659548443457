"""Special functions MLX lacks, vectorised after PyTorch's own implementations (ATen/native/Math.h,
derived from the Cephes Math Library, Copyright (c) 2018 Steven Moshier, 3-clause BSD licence) and a
Lanczos lgamma. Computed in float32 (half inputs are upcast, as PyTorch does)."""
import math

import mlx.core as mx

_LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7]
_PSI_A = [8.33333333333333333333E-2, -2.10927960927960927961E-2, 7.57575757575757575758E-3,
          -4.16666666666666666667E-3, 3.96825396825396825397E-3, -8.33333333333333333333E-3,
          8.33333333333333333333E-2]
_ZETA_A = [12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, 7.47242496e10,
           -2.950130727918164224e12, 1.1646782814350067249e14, -4.5979787224074726105e15,
           1.8152105401943546773e17, -7.1661652561756670113e18]
_I0E_A = [-4.41534164647933937950E-18, 3.33079451882223809783E-17, -2.43127984654795469359E-16,
          1.71539128555513303061E-15, -1.16853328779934516808E-14, 7.67618549860493561688E-14,
          -4.85644678311192946090E-13, 2.95505266312963983461E-12, -1.72682629144155570723E-11,
          9.67580903537323691224E-11, -5.18979560163526290666E-10, 2.65982372468238665035E-9,
          -1.30002500998624804212E-8, 6.04699502254191894932E-8, -2.67079385394061173391E-7,
          1.11738753912010371815E-6, -4.41673835845875056359E-6, 1.64484480707288970893E-5,
          -5.75419501008210370398E-5, 1.88502885095841655729E-4, -5.76375574538582365885E-4,
          1.63947561694133579842E-3, -4.32430999505057594430E-3, 1.05464603945949983183E-2,
          -2.37374148058994688156E-2, 4.93052842396707084878E-2, -9.49010970480476444210E-2,
          1.71620901522208775349E-1, -3.04682672343198398683E-1, 6.76795274409476084995E-1]
_I0E_B = [-7.23318048787475395456E-18, -4.83050448594418207126E-18, 4.46562142029675999901E-17,
          3.46122286769746109310E-17, -2.82762398051658348494E-16, -3.42548561967721913462E-16,
          1.77256013305652638360E-15, 3.81168066935262242075E-15, -9.55484669882830764870E-15,
          -4.15056934728722208663E-14, 1.54008621752140982691E-14, 3.85277838274214270114E-13,
          7.18012445138366623367E-13, -1.79417853150680611778E-12, -1.32158118404477131188E-11,
          -3.14991652796324136454E-11, 1.18891471078464383424E-11, 4.94060238822496958910E-10,
          3.39623202570838634515E-9, 2.26666899049817806459E-8, 2.04891858946906374183E-7,
          2.89137052083475648297E-6, 6.88975834691682398426E-5, 3.36911647825569408990E-3,
          8.04490411014108831608E-1]
_I1E_A = [9.38153738649577178388E-9, -4.44505912879632808065E-8, 2.00329475355213526229E-7,
          -8.56872026469545474066E-7, 3.47025130813767847674E-6, -1.32731636560394358279E-5,
          4.78156510755005422638E-5, -1.61760815825896745588E-4, 5.12285956168575772895E-4,
          -1.51357245063125314899E-3, 4.15642294431288815669E-3, -1.05640848946261981558E-2,
          2.47264490306265168283E-2, -5.29459812080949914269E-2, 1.02643658689847095384E-1,
          -1.76416518357834055153E-1, 2.52587186443633654823E-1]
_I1E_B = [-3.83538038596423702205E-9, -2.63146884688951950684E-8, -2.51223623787020892529E-7,
          -3.88256480887769039346E-6, -1.10588938762623716291E-4, -9.76109749136146840777E-3,
          7.78576235018280120474E-1]
_NDTRI_P0 = [-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
             1.39312609387279679503E1, -1.23916583867381258016E0]
_NDTRI_Q0 = [1.0, 1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
             -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
             1.59056225126211695515E1, -1.18331621121330003142E0]
_NDTRI_P1 = [4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
             4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
             -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4]
_NDTRI_Q1 = [1.0, 1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
             1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
             -3.80806407691578277194E-2, -9.33259480895457427372E-4]
_NDTRI_P2 = [3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
             1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
             3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9]
_NDTRI_Q2 = [1.0, 6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
             2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
             2.89247864745380683936E-6, 6.79019408009981274425E-9]


def _f32(x):
    if not isinstance(x, mx.array):
        return mx.array(x, dtype=mx.float32)
    return x if x.dtype == mx.float32 else x.astype(mx.float32)


def _polevl(x, coef):
    r = mx.zeros_like(x)
    for c in coef:
        r = r * x + c
    return r


def _chbevl(x, coef):
    b0, b1, b2 = mx.full(x.shape, coef[0], dtype=x.dtype), mx.zeros_like(x), mx.zeros_like(x)
    for c in coef[1:]:
        b2 = b1
        b1 = b0
        b0 = x * b1 - b2 + c
    return 0.5 * (b0 - b2)


def lgamma(x):
    """log|Gamma(x)| (Lanczos, g = 7; reflection below 0.5)."""
    x = _f32(x)
    refl = x < 0.5
    z = mx.where(refl, 1.0 - x, x) - 1.0
    a = mx.full(z.shape, _LANCZOS[0], dtype=mx.float32)
    for i in range(1, 9):
        a = a + _LANCZOS[i] / (z + i)
    t = z + 7.5
    lg = 0.5 * math.log(2 * math.pi) + (z + 0.5) * mx.log(t) - t + mx.log(a)
    s = mx.abs(mx.sin(math.pi * x))
    out = mx.where(refl, math.log(math.pi) - mx.log(s) - lg, lg)
    bad = (x <= 0) & (x == mx.floor(x))  # poles
    out = mx.where(bad, mx.inf, out)
    return mx.where(mx.isinf(x), mx.inf, out)


def digamma(x):
    """psi(x): reflection for x < 0, recurrence up to 10, then the asymptotic series."""
    x = _f32(x)
    neg = x < 0
    r = x - mx.trunc(x)
    y = mx.where(neg, 1.0 - x, x)
    result = mx.zeros_like(y)
    for _ in range(10):
        small = y < 10
        result = mx.where(small, result - 1.0 / mx.where(small, y, 1.0), result)
        y = mx.where(small, y + 1, y)
    z = 1.0 / (y * y)
    poly = mx.where(y < 1.0e17, z * _polevl(z, _PSI_A), 0.0)
    out = result + mx.log(y) - 0.5 / y - poly
    out = mx.where(neg, out - math.pi / mx.tan(math.pi * r), out)
    out = mx.where(neg & (x == mx.trunc(x)), mx.nan, out)
    return mx.where(x == 0, mx.where(mx.sign(1.0 / mx.where(x == 0, x, 1.0)) < 0, mx.inf, -mx.inf), out)


def trigamma(x):
    x = _f32(x)
    refl = x < 0.5
    s = mx.sin(math.pi * x)
    result = mx.where(refl, -(math.pi * math.pi) / (s * s), 0.0)
    y = mx.where(refl, 1.0 - x, x)
    for _ in range(6):
        result = result + 1.0 / (y * y)
        y = y + 1
    ixx = 1.0 / (y * y)
    result = result + (1 + 1 / (2 * y) + ixx * (1.0 / 6 - ixx * (1.0 / 30 - ixx * (1.0 / 42)))) / y
    return mx.where(refl, -result, result)


def zeta(x, q):
    """Hurwitz zeta(x, q) (Euler-Maclaurin, as Cephes)."""
    x, q = _f32(x), _f32(q)
    x, q = mx.broadcast_arrays(x, q)
    qmin = float(mx.min(q).item()) if q.size else 9.0
    steps = 9 + max(0, min(int(math.ceil(9.0 - qmin)), 100000)) if math.isfinite(qmin) else 9
    s = mx.power(q, -x)
    a = q
    b = mx.zeros_like(q)
    for _ in range(steps):
        a = a + 1.0
        b = mx.power(a, -x)
        s = s + b
    w = a
    s = s + b * w / (x - 1.0)
    s = s - 0.5 * b
    aa = mx.ones_like(q)
    k = 0.0
    for i in range(12):
        aa = aa * (x + k)
        b = b / w
        s = s + aa * b / _ZETA_A[i]
        k += 1.0
        aa = aa * (x + k)
        b = b / w
        k += 1.0
    out = mx.where(x == 1, mx.inf, s)
    out = mx.where(x < 1, mx.nan, out)
    qint = q == mx.floor(q)
    out = mx.where((q <= 0) & qint, mx.inf, out)
    return mx.where((q <= 0) & ~qint & (x != mx.floor(x)), mx.nan, out)


def polygamma(n, x):
    """torch.polygamma(n, x)."""
    if n == 0:
        return digamma(x)
    if n == 1:
        return trigamma(x)
    sign = 1.0 if n % 2 else -1.0
    return sign * math.exp(math.lgamma(n + 1.0)) * zeta(float(n + 1), x)


def erfc(x):
    x = _f32(x)
    return 1.0 - mx.erf(x)


def erfcx(x):
    """exp(x^2) erfc(x); a continued fraction for x >= 2 (no overflow or cancellation)."""
    x = _f32(x)
    direct = mx.exp(x * x) * (1.0 - mx.erf(x))
    xs = mx.maximum(x, 2.0)
    frac = mx.zeros_like(xs)
    for k in range(60, 0, -1):
        frac = (k / 2.0) / (xs + frac)
    cf = 1.0 / (math.sqrt(math.pi) * (xs + frac))
    return mx.where(x >= 2.0, cf, direct)


def log_ndtr(x):
    """log of the standard normal CDF."""
    x = _f32(x)
    t = x * (1.0 / math.sqrt(2.0))
    low = mx.log(erfcx(-t) / 2) - t * t
    high = mx.log1p(-(1.0 - mx.erf(t)) / 2)
    return mx.where(x < -1.0, low, high)


def ndtri(y0):
    """Inverse of the standard normal CDF (Cephes)."""
    y0 = _f32(y0)
    code = ~(y0 > 1.0 - 0.13533528323661269189)
    y = mx.where(code, y0, 1.0 - y0)
    mid = y > 0.13533528323661269189
    ym = y - 0.5
    y2 = ym * ym
    xmid = (ym + ym * (y2 * _polevl(y2, _NDTRI_P0) / _polevl(y2, _NDTRI_Q0))) * 2.50662827463100050242
    ys = mx.where(mid | (y <= 0), 0.5, y)
    xx = mx.sqrt(-2.0 * mx.log(ys))
    x0 = xx - mx.log(xx) / xx
    z = 1.0 / xx
    x1 = mx.where(xx < 8.0, z * _polevl(z, _NDTRI_P1) / _polevl(z, _NDTRI_Q1),
                  z * _polevl(z, _NDTRI_P2) / _polevl(z, _NDTRI_Q2))
    xt = x0 - x1
    xt = mx.where(code, -xt, xt)
    out = mx.where(mid, xmid, xt)
    out = mx.where(y0 == 0, -mx.inf, mx.where(y0 == 1, mx.inf, out))
    return mx.where((y0 < 0) | (y0 > 1), mx.nan, out)


def i0e(x):
    x = mx.abs(_f32(x))
    small = _chbevl(x / 2.0 - 2.0, _I0E_A)
    big = _chbevl(32.0 / mx.maximum(x, 8.0) - 2.0, _I0E_B) / mx.sqrt(mx.maximum(x, 8.0))
    return mx.where(x <= 8.0, small, big)


def i0(x):
    a = mx.abs(_f32(x))
    return mx.exp(a) * i0e(a)


def i1e(x):
    x = _f32(x)
    a = mx.abs(x)
    small = _chbevl(a / 2.0 - 2.0, _I1E_A) * a
    big = _chbevl(32.0 / mx.maximum(a, 8.0) - 2.0, _I1E_B) / mx.sqrt(mx.maximum(a, 8.0))
    out = mx.where(a <= 8.0, small, big)
    return mx.where(x < 0, -out, out)


def i1(x):
    x = _f32(x)
    return mx.exp(mx.abs(x)) * i1e(x)


def _n_max(n):
    if not isinstance(n, mx.array):
        return int(n)
    finite = mx.where(mx.isnan(n.astype(mx.float32)) | mx.isinf(n.astype(mx.float32)), 0, n)
    return int(mx.max(finite).item()) if n.size else 0


def orthogonal_polynomial(kind, x, n):
    """PyTorch's special.*_polynomial_* by their three-term recurrences (n a tensor or a number)."""
    x = _f32(x)
    nf = _f32(n)
    x, nf = mx.broadcast_arrays(x, nf)
    nf = mx.where(mx.isnan(nf) | mx.isinf(nf), -1.0, mx.trunc(nf))
    if kind.startswith("shifted_"):
        x = x + x - 1.0
        kind = kind[len("shifted_"):]
    first = {"chebyshev_t": x, "chebyshev_u": x + x, "chebyshev_v": x + x - 1.0, "chebyshev_w": x + x + 1.0,
             "hermite_h": x + x, "hermite_he": x, "laguerre_l": 1.0 - x, "legendre_p": x}[kind]
    p, q = mx.ones_like(x), first
    out = mx.where(nf == 0, p, mx.where(nf == 1, q, 0.0))
    for k in range(1, _n_max(n)):  # q = P_k, p = P_{k-1} -> r = P_{k+1}
        if kind.startswith("chebyshev"):
            r = (x + x) * q - p
        elif kind == "hermite_h":
            r = (x + x) * q - 2.0 * k * p
        elif kind == "hermite_he":
            r = x * q - k * p
        elif kind == "laguerre_l":
            r = ((2 * k + 1 - x) * q - k * p) / (k + 1)
        else:
            r = ((2 * k + 1) * x * q - k * p) / (k + 1)
        out = mx.where(nf == k + 1, r, out)
        p, q = q, r
    return mx.where(nf < 0, 0.0, out)


def frexp(x):
    """torch.frexp: (mantissa in [0.5, 1), int32 exponent) with x = mantissa * 2**exponent."""
    a = mx.abs(x)
    ok = (a > 0) & ~mx.isinf(a) & ~mx.isnan(a)
    e = mx.floor(mx.log2(mx.where(ok, a, 1.0))) + 1
    m = x / mx.power(2.0, e)
    big = mx.abs(m) >= 1
    m, e = mx.where(big, m / 2, m), mx.where(big, e + 1, e)
    small = ok & (mx.abs(m) < 0.5)
    m, e = mx.where(small, m * 2, m), mx.where(small, e - 1, e)
    return mx.where(ok, m, x), mx.where(ok, e, 0).astype(mx.int32)
