"""scikit-learn-compatible transformers whose fit is one aggregate query and whose
transform is a lazy SQL expression."""

from __future__ import annotations

from neve.preprocessing._base import BaseTransformer
from neve.preprocessing._discretize import KBinsDiscretizer
from neve.preprocessing._encoders import LabelEncoder, OneHotEncoder, OrdinalEncoder
from neve.preprocessing._impute import SimpleImputer
from neve.preprocessing._scalers import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)

__all__ = [
    "BaseTransformer",
    "Binarizer",
    "KBinsDiscretizer",
    "LabelEncoder",
    "MaxAbsScaler",
    "MinMaxScaler",
    "Normalizer",
    "OneHotEncoder",
    "OrdinalEncoder",
    "RobustScaler",
    "SimpleImputer",
    "StandardScaler",
]

#: Classes ``Pipeline.from_dict`` may instantiate: a closed list, so state never names code to import.
TRANSFORMERS: dict[str, type[BaseTransformer]] = {
    cls.__name__: cls
    for cls in (
        Binarizer,
        KBinsDiscretizer,
        LabelEncoder,
        MaxAbsScaler,
        MinMaxScaler,
        Normalizer,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        SimpleImputer,
        StandardScaler,
    )
}
