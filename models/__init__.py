"""Networks, built by name through the registry (``models.build("dual_crnn", ...)``).

Importing a module registers its architectures: the project's ``dual_crnn``, the seed systems
(``resu_dense_mhsa``, ``seed001_cnn``, ``imle_net``, ``resconv_bilstm_attn``, seed 002's ``gru``,
``lstm``, ``bigru_attn``, ``image_alexnet``, ``image_resnet``, ``image_vgg``, ``late_fusion``) and the PTB-XL benchmark's ``resnet1d_wang``, ``inception1d``,
``xresnet1d101``. docs/architectures.md says what each is and where it comes from.
"""

from models import branch_stack as _branch_stack  # noqa: F401
from models import dual_branch as _dual_branch  # noqa: F401  (registers its architecture)
from models import image_route as _image_route  # noqa: F401
from models import imle_net as _imle_net  # noqa: F401
from models import late_fusion as _late_fusion  # noqa: F401
from models import ptbxl_baselines as _ptbxl_baselines  # noqa: F401
from models import recurrent as _recurrent  # noqa: F401
from models import resconv_bilstm as _resconv_bilstm  # noqa: F401
from models import resu_dense as _resu_dense  # noqa: F401
from models import seed001_cnn as _seed001_cnn  # noqa: F401
from models.registry import available, build, register

__all__ = ["available", "build", "register"]
