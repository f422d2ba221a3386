"""What reward code may call: the allowlist of torch functions, tensor methods and object attributes.

The AST policy (:mod:`.policy`) lets reward code use only the names listed here:

* ``torch.<name>``, ``torch.nn.functional.<name>``, ``torch.linalg.<name>``, ``torch.special.<name>``,
  ``torch.fft.<name>``: the functions in :data:`MODULE_FUNCTIONS` (plus, on any allowed module,
  dtypes such as ``torch.float32``, plain numbers such as ``torch.pi`` and the classes of
  :data:`SAFE_TORCH_CLASSES`);
* ``math.<name>``: every public name of :mod:`math` (pure numeric functions and constants);
* ``<anything else>.<name>``: the names in :data:`OBJECT_ATTRIBUTES`: out-of-place tensor methods
  and properties, and the methods of dicts, lists, strings and numbers that reward code uses.

Everything else is refused, so a torch function or tensor method that reaches raw memory or the
import machinery is refused without having to be known: sparse constructors and conversions
(``sparse_coo_tensor``, ``to_sparse``), ``data_ptr``/``const_data_ptr``/``mutable_data_ptr``,
``storage``/``untyped_storage``/``storage_type``, ``Tensor.type`` (which imports dotted names),
``as_strided``, ``set_``, uninitialised memory (``empty``, ``new_empty``), ``numpy``, hooks and
``backward``. Only the standard library and torch are imported here (the validation child loads the
sandbox package by path).
"""

from __future__ import annotations

import math

import torch

#: torch classes reward code may name (``isinstance(x, torch.Tensor)``, ``torch.finfo(...)``);
#: every other class reached from an allowed module is refused.
SAFE_TORCH_CLASSES: tuple[type, ...] = (
    torch.Tensor, torch.Size, torch.device, torch.dtype, torch.finfo, torch.iinfo, torch.Generator,
)

_POINTWISE = """
abs absolute acos acosh add addcdiv addcmul angle arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin
asinh atan atan2 atanh bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor
ceil clamp clamp_max clamp_min clip copysign cos cosh deg2rad div divide erf erfc erfinv exp exp2 expm1
fix float_power floor floor_divide fmax fmin fmod frac heaviside hypot lerp lgamma log log10 log1p log2
logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logit maximum minimum mul multiply
nan_to_num neg negative nextafter positive pow rad2deg reciprocal remainder round rsqrt sgn sigmoid sign
signbit sin sinc sinh softmax log_softmax sqrt square sub subtract tan tanh true_divide trunc xlogy relu
"""
_COMPARE = """
allclose eq equal ge greater greater_equal gt isclose isfinite isin isinf isnan isneginf isposinf isreal
le less less_equal lt ne not_equal where
"""
_REDUCE = """
all amax amin aminmax any argmax argmin argsort count_nonzero cummax cummin cumprod cumsum dist logcumsumexp
logsumexp max mean median min mode nanmean nanmedian nansum norm prod quantile nanquantile sort std
std_mean sum topk unique unique_consecutive var var_mean kthvalue msort
"""
_SHAPE = """
atleast_1d atleast_2d atleast_3d broadcast_shapes broadcast_tensors broadcast_to cat chunk column_stack
concat concatenate dstack flatten flip fliplr flipud gather hsplit hstack index_select masked_select movedim
moveaxis narrow permute ravel repeat_interleave reshape roll rot90 select split squeeze stack swapaxes swapdims
t take take_along_dim tensor_split tile transpose unbind unflatten unsqueeze vsplit vstack diag diagonal
diag_embed tril triu tril_indices triu_indices meshgrid cartesian_prod combinations index_add index_copy
index_fill index_reduce masked_fill masked_scatter scatter scatter_add scatter_reduce select_scatter
slice_scatter diagonal_scatter nonzero argwhere searchsorted bucketize bincount histc diff
"""
_LINEAR = """
bmm cdist cross dot einsum inner kron matmul mm mv outer tensordot trace vdot cosine_similarity
pairwise_distance
"""
_CREATE = """
arange as_tensor tensor zeros zeros_like ones ones_like full full_like eye linspace logspace scalar_tensor
complex polar rand rand_like randn randn_like randint randint_like randperm bernoulli multinomial normal
poisson clone is_tensor is_floating_point is_complex numel result_type promote_types can_cast
get_default_dtype is_nonzero
"""

#: the functions each allowed module offers reward code (``math``: every public name of :mod:`math`)
MODULE_FUNCTIONS: dict[str, frozenset[str]] = {
    "torch": frozenset((_POINTWISE + _COMPARE + _REDUCE + _SHAPE + _LINEAR + _CREATE).split()),
    "torch.nn.functional": frozenset("""
        relu relu6 leaky_relu elu selu celu gelu silu mish softplus softsign softmin softmax log_softmax
        sigmoid logsigmoid tanh tanhshrink hardtanh hardsigmoid hardswish hardshrink softshrink threshold
        glu normalize one_hot pad cosine_similarity pairwise_distance mse_loss l1_loss smooth_l1_loss
        huber_loss binary_cross_entropy binary_cross_entropy_with_logits cross_entropy nll_loss kl_div
        avg_pool1d avg_pool2d max_pool1d max_pool2d
    """.split()),
    "torch.linalg": frozenset("""
        norm vector_norm matrix_norm det slogdet inv solve cross vecdot matmul eigvalsh svdvals
    """.split()),
    "torch.special": frozenset("""
        expit logit erf erfc erfinv exp2 expm1 log1p logsumexp softmax log_softmax sinc entr xlogy xlog1py
        gammaln digamma psi i0 ndtr ndtri log_ndtr round
    """.split()),
    "torch.fft": frozenset("fft ifft rfft irfft fftn ifftn rfftn irfftn fftfreq rfftfreq fftshift ifftshift".split()),
    "math": frozenset(n for n in dir(math) if not n.startswith("_")),
}

_TENSOR_METHODS = """
abs absolute acos acosh add addcdiv addcmul all allclose amax amin aminmax angle any argmax argmin argsort
argwhere arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh atan atan2 atanh bincount
bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor bool byte
ceil char chunk clamp clamp_max clamp_min clip clone contiguous copysign cos cosh count_nonzero cpu cross
cummax cummin cumprod cumsum deg2rad detach diag diag_embed diagonal diff digamma dim dist div divide dot
double eq equal erf erfc erfinv exp exp2 expand expand_as expm1 fix flatten flip fliplr flipud float
float_power floor floor_divide fmax fmin fmod frac gather ge greater greater_equal gt half heaviside histc
hypot index_add index_copy index_fill index_put index_reduce index_select inner int is_complex is_contiguous
is_floating_point isclose isfinite isinf isnan isneginf isposinf isreal item kron kthvalue le lerp less
less_equal lgamma log log10 log1p log2 log_softmax logaddexp logaddexp2 logcumsumexp logical_and
logical_not logical_or logical_xor logit logsumexp long lt masked_fill masked_scatter masked_select matmul
max maximum mean median min minimum mm mode movedim moveaxis msort mul multiply mv nan_to_num nanmean
nanmedian nanquantile nansum narrow ne neg negative new_full new_ones new_tensor new_zeros nextafter nonzero
norm not_equal numel outer permute positive pow prod quantile rad2deg ravel reciprocal relu remainder
repeat repeat_interleave reshape reshape_as roll rot90 round rsqrt scatter scatter_add scatter_reduce select
sgn short sigmoid sign signbit sin sinc sinh size softmax sort split sqrt square squeeze std sub subtract
sum sum_to_size swapaxes swapdims t take take_along_dim tan tanh tensor_split tile to tolist topk trace
transpose tril triu true_divide trunc type_as unbind unflatten unique unique_consecutive unsqueeze var
view view_as where xlogy
shape dtype device ndim T mT H mH is_cuda requires_grad values indices
"""
_PYTHON_METHODS = """
items keys values get copy update pop setdefault append extend insert index count sort reverse remove clear
startswith endswith lower upper strip lstrip rstrip split join replace title capitalize isdigit isalpha
real imag conjugate is_integer bit_length
eps max min tiny smallest_normal resolution bits itemsize is_signed
"""

#: attribute names reward code may use on any object that is not an allowed module: out-of-place
#: tensor methods and properties (``x.sum(-1)``, ``x.shape``, ``r.max(dim=-1).values``), and the methods
#: of dicts, lists, strings, numbers and ``torch.finfo`` that reward code uses
OBJECT_ATTRIBUTES: frozenset[str] = frozenset((_TENSOR_METHODS + _PYTHON_METHODS).split())
