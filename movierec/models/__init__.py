"""Every Recommender movierec ships, one module or package per class.

``baseline`` (BiasedBaseline), ``popularity`` (Popularity), ``ease`` (EASE), ``surprise_svd``
(SurpriseSVD), ``spark_als`` (SparkALS), ``sagemaker_fm`` (SageMakerFM) and ``myfm_bayes``
(MyFMBayes). The models that need an extra are imported on first use through [`movierec`][movierec].
"""
